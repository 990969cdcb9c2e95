; Function definitions of the (preprocessed) main file: the frames the estimator measures.
; Pointer-returning functions nest the function_declarator inside pointer_declarators.
(function_definition
  declarator: [
    (function_declarator declarator: (identifier) @name)
    (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))
    (pointer_declarator declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name)))
  ]
  body: (compound_statement) @body) @function
