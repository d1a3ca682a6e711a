; c.scm: definitions and references in C source and headers, read by src/code/extract.c.
; Captures: @definition.KIND or @reference.KIND on the node the item spans, @name on its name.
; Kinds: function (with a body), prototype (a declared function), struct, union, enum, type
; (typedef), global (a variable at file level), macro; references: call, type, include.
; #not-inside? CAPTURE TYPE...: the captured node has no ancestor of those types (evaluated by
; src/code/query.c, like #eq?, #not-eq?, #match?, #not-match? and #any-of?).

; ---- functions, with up to two levels of pointer in the return type ----
(function_definition
  declarator: [
    (function_declarator declarator: (identifier) @name)
    (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))
    (pointer_declarator declarator:
      (pointer_declarator declarator: (function_declarator declarator: (identifier) @name)))
  ]) @definition.function

((declaration
  declarator: [
    (function_declarator declarator: (identifier) @name)
    (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))
    (pointer_declarator declarator:
      (pointer_declarator declarator: (function_declarator declarator: (identifier) @name)))
  ]) @definition.prototype
 (#not-inside? @definition.prototype "compound_statement"))

; ---- types ----
(struct_specifier name: (type_identifier) @name body: (field_declaration_list)) @definition.struct
(union_specifier name: (type_identifier) @name body: (field_declaration_list)) @definition.union
(enum_specifier name: (type_identifier) @name body: (enumerator_list)) @definition.enum

(type_definition
  declarator: [
    (type_identifier) @name
    (pointer_declarator declarator: (type_identifier) @name)
    (array_declarator declarator: (type_identifier) @name)
    (function_declarator declarator:
      (parenthesized_declarator (pointer_declarator declarator: (type_identifier) @name)))
  ]) @definition.type

; ---- variables at file level ----
((declaration
  declarator: [
    (identifier) @name
    (init_declarator declarator: (identifier) @name)
    (pointer_declarator declarator: (identifier) @name)
    (init_declarator declarator: (pointer_declarator declarator: (identifier) @name))
    (array_declarator declarator: (identifier) @name)
    (init_declarator declarator: (array_declarator declarator: (identifier) @name))
    (function_declarator declarator:
      (parenthesized_declarator (pointer_declarator declarator: (identifier) @name)))
    (init_declarator declarator: (function_declarator declarator:
      (parenthesized_declarator (pointer_declarator declarator: (identifier) @name))))
  ]) @definition.global
 (#not-inside? @definition.global "compound_statement"))

; ---- macros ----
(preproc_def name: (identifier) @name) @definition.macro
(preproc_function_def name: (identifier) @name) @definition.macro

; ---- references ----
(call_expression function: (identifier) @name) @reference.call
(call_expression function: (field_expression field: (field_identifier) @name)) @reference.call
((type_identifier) @name @reference.type)
(preproc_include path: (_) @name) @reference.include
