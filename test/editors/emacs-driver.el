;;; emacs-driver.el --- loaded after the README's eglot snippet: opens the seed as a user would,
;;; waits for eglot's diagnostics in flymake, asks for the hover on `entry', and writes what Emacs
;;; holds as JSON to $BSL_RESULT for test/editors/emacs.test.mjs to judge.
(require 'json)
(require 'cl-lib)
(require 'lisp-mnt)

(defun bsl-wait (seconds predicate)
  "Run timers and process output for up to SECONDS until PREDICATE holds."
  (let ((deadline (+ (float-time) seconds)))
    (while (and (not (funcall predicate)) (< (float-time) deadline))
      (accept-process-output nil 0.1))
    (funcall predicate)))

(find-file (getenv "BSL_SOURCE"))
;; eglot-ensure connects from the next command's post-command-hook, which batch mode never runs.
(run-hooks 'post-command-hook)
(bsl-wait 30 (lambda () (eglot-current-server)))
(bsl-wait 30 (lambda () (when (bound-and-true-p flymake-mode) (flymake-start)) (flymake-diagnostics)))

(let* ((server (eglot-current-server))
       (diagnostics
        (mapcar (lambda (diagnostic)
                  `((line . ,(line-number-at-pos (flymake-diagnostic-beg diagnostic)))
                    (type . ,(symbol-name (flymake-diagnostic-type diagnostic)))
                    (message . ,(flymake-diagnostic-text diagnostic))))
                (flymake-diagnostics)))
       (hover
        (when server
          (goto-char (point-min))
          (search-forward "int entry(")
          (backward-char 3)
          (let ((contents (plist-get (jsonrpc-request server :textDocument/hover (eglot--TextDocumentPositionParams)) :contents)))
            (if (stringp contents) contents (plist-get contents :value))))))
  (with-temp-file (getenv "BSL_RESULT")
    (insert (json-encode `((emacs . ,emacs-version)
                           (eglot . ,(lm-version (locate-library "eglot.el")))
                           (server . ,(and server (plist-get (eglot--server-info server) :name)))
                           (root . ,(and server (expand-file-name (project-root (eglot--project server)))))
                           (diagnostics . ,(vconcat diagnostics))
                           (hover . ,hover)))))
  (when server (eglot-shutdown server)))
(kill-emacs 0)
