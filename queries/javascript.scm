; javascript.scm: definitions and references in JavaScript, read by src/code/extract.c.
; Captures: @definition.KIND or @reference.KIND on the node the item spans, @name on its name.
; Kinds: function (declared, or a function bound to a name), class, method, global (a name
; declared at the top level); references: call, type (a class constructed with new), import.
; When two patterns capture the same node, the first one wins (functions before globals).

(function_declaration name: (identifier) @name) @definition.function
(generator_function_declaration name: (identifier) @name) @definition.function
(lexical_declaration (variable_declarator name: (identifier) @name
  value: [(arrow_function) (function_expression) (generator_function)])) @definition.function
(variable_declaration (variable_declarator name: (identifier) @name
  value: [(arrow_function) (function_expression) (generator_function)])) @definition.function
(class_declaration name: (_) @name) @definition.class
(method_definition name: (_) @name) @definition.method

(program (lexical_declaration (variable_declarator name: (identifier) @name)) @definition.global)
(program (variable_declaration (variable_declarator name: (identifier) @name)) @definition.global)
(program (export_statement declaration:
  (lexical_declaration (variable_declarator name: (identifier) @name)) @definition.global))

(call_expression function: (identifier) @name) @reference.call
(call_expression function: (member_expression property: (property_identifier) @name))
  @reference.call
(new_expression constructor: (identifier) @name) @reference.type
(import_statement source: (string (string_fragment) @name)) @reference.import
((call_expression function: (identifier) @_require
   arguments: (arguments . (string (string_fragment) @name) .)) @reference.import
 (#eq? @_require "require"))
