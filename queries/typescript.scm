; typescript.scm: definitions and references in TypeScript and TSX, read by src/code/extract.c.
; Captures: @definition.KIND or @reference.KIND on the node the item spans, @name on its name.
; Kinds: as javascript.scm, plus interface, type (alias), enum, module (namespace), prototype
; (a declared function signature); references: as javascript.scm, plus type (a type named in an
; annotation). When two patterns capture the same node, the first one wins.

(function_declaration name: (identifier) @name) @definition.function
(generator_function_declaration name: (identifier) @name) @definition.function
(lexical_declaration (variable_declarator name: (identifier) @name
  value: [(arrow_function) (function_expression) (generator_function)])) @definition.function
(variable_declaration (variable_declarator name: (identifier) @name
  value: [(arrow_function) (function_expression) (generator_function)])) @definition.function
(function_signature name: (identifier) @name) @definition.prototype
(class_declaration name: (_) @name) @definition.class
(abstract_class_declaration name: (_) @name) @definition.class
(method_definition name: (_) @name) @definition.method
(method_signature name: (_) @name) @definition.method
(abstract_method_signature name: (_) @name) @definition.method
(interface_declaration name: (_) @name) @definition.interface
(type_alias_declaration name: (_) @name) @definition.type
(enum_declaration name: (_) @name) @definition.enum
(internal_module name: (_) @name) @definition.module
(module name: (_) @name) @definition.module

(program (lexical_declaration (variable_declarator name: (identifier) @name)) @definition.global)
(program (variable_declaration (variable_declarator name: (identifier) @name)) @definition.global)
(program (export_statement declaration:
  (lexical_declaration (variable_declarator name: (identifier) @name)) @definition.global))

(call_expression function: (identifier) @name) @reference.call
(call_expression function: (member_expression property: (property_identifier) @name))
  @reference.call
(new_expression constructor: (identifier) @name) @reference.type
((type_identifier) @name @reference.type)
(import_statement source: (string (string_fragment) @name)) @reference.import
((call_expression function: (identifier) @_require
   arguments: (arguments . (string (string_fragment) @name) .)) @reference.import
 (#eq? @_require "require"))
