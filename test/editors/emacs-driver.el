;;; emacs-driver.el --- loaded after the README's eglot snippet: opens the seed as a user would,
;;; waits for eglot's diagnostics in flymake, asks for the hover on `entry', and writes what Emacs
;;; changes the file on disk and rebuilds its object, and writes what Emacs
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

(defun bsl-diagnostics ()
  "What flymake holds for the buffer, as alists for the JSON result."
  (mapcar (lambda (diagnostic)
            `((line . ,(line-number-at-pos (flymake-diagnostic-beg diagnostic)))
              (type . ,(symbol-name (flymake-diagnostic-type diagnostic)))
              (message . ,(flymake-diagnostic-text diagnostic))))
          (flymake-diagnostics)))

(defun bsl-disk-change-and-rebuild ()
  "Change the file on disk as a formatter would, revert the buffer, rebuild the object; return the diagnostics once the object's error is fresh at its new line."
  (let* ((source (getenv "BSL_SOURCE"))
         (object (concat (file-name-sans-extension source) ".o"))
         (tail-line (save-excursion (goto-char (point-min)) (search-forward "bpf_tail_call(") (line-number-at-pos))))
    (with-temp-buffer
      (insert "/* reformatted outside the editor */\n")
      (insert-file-contents source)
      (write-region nil nil source))
    (revert-buffer t t t)
    (call-process "clang-19" nil nil nil "-O2" "-g" "-target" "bpf" "-I/usr/include/x86_64-linux-gnu" "-c" source "-o" object)
    ;; eglot watches the files the server registers with file-notify, whose events reach Lisp only
    ;; through the command loop, which batch mode never runs: send what the watcher would.
    (jsonrpc-notify (eglot-current-server) :workspace/didChangeWatchedFiles
                    `(:changes [(:uri ,(eglot--path-to-uri source) :type 2) (:uri ,(eglot--path-to-uri object) :type 2)]))
    (bsl-wait 30 (lambda ()
                   (flymake-start)
                   (cl-some (lambda (diagnostic)
                              (and (= (line-number-at-pos (flymake-diagnostic-beg diagnostic)) (1+ tail-line))
                                   (eq (flymake-diagnostic-type diagnostic) 'eglot-error)
                                   (not (string-match-p "stale" (flymake-diagnostic-text diagnostic)))))
                            (flymake-diagnostics))))
    (bsl-diagnostics)))

(let* ((server (eglot-current-server))
       (diagnostics (bsl-diagnostics))
       (hover
        (when server
          (goto-char (point-min))
          (search-forward "int entry(")
          (backward-char 3)
          (let ((contents (plist-get (jsonrpc-request server :textDocument/hover (eglot--TextDocumentPositionParams)) :contents)))
            (if (stringp contents) contents (plist-get contents :value)))))
       (rebuilt (when server (bsl-disk-change-and-rebuild))))
  (with-temp-file (getenv "BSL_RESULT")
    (insert (json-encode `((emacs . ,emacs-version)
                           (eglot . ,(lm-version (locate-library "eglot.el")))
                           (server . ,(and server (plist-get (eglot--server-info server) :name)))
                           (root . ,(and server (expand-file-name (project-root (eglot--project server)))))
                           (diagnostics . ,(vconcat diagnostics))
                           (hover . ,hover)
                           (rebuilt . ,(vconcat rebuilt))))))
  (when server (eglot-shutdown server)))
(kill-emacs 0)
