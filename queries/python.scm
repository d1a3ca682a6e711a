; python.scm: definitions and references in Python, read by src/code/extract.c.
; Captures: @definition.KIND or @reference.KIND on the node the item spans, @name on its name.
; A function directly inside a class is a method (decided by extract.c from the nesting).
; Kinds: function, class, global (a name assigned at module level); references: call, type (a
; base class), import.

(function_definition name: (identifier) @name) @definition.function
(class_definition name: (identifier) @name) @definition.class

(module (expression_statement (assignment left: (identifier) @name)) @definition.global)

(call function: (identifier) @name) @reference.call
(call function: (attribute attribute: (identifier) @name)) @reference.call
(class_definition superclasses: (argument_list [
  (identifier) @name
  (attribute attribute: (identifier) @name)
]) @reference.type)
(import_statement name: [
  (dotted_name) @name
  (aliased_import name: (dotted_name) @name)
]) @reference.import
(import_from_statement module_name: (_) @name) @reference.import
