; Calls by name (filtered to the printk family in code), macros that may wrap a printk, and plain
; definitions such as BPF_NO_GLOBAL_DATA.
(call_expression
  function: (identifier) @callee
  arguments: (argument_list) @arguments) @call
(preproc_function_def
  name: (identifier) @macro.name
  value: (preproc_arg) @macro.body)
(preproc_def
  name: (identifier) @define.name)
