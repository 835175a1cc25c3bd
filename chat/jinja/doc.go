// Package jinja renders the Jinja2 templates that Hugging Face models ship as
// chat templates, byte for byte as Python's jinja2 does under transformers'
// apply_chat_template (trim_blocks and lstrip_blocks on, loop controls,
// immutable sandbox).
//
// It is a deliberate subset sized to chat templates: statements if, for (with
// else, inline if, loop.*), set (also blocks and namespace attributes), macro,
// with, filter, raw, break/continue and transformers' generation block; the usual
// expressions, filters, tests and the str/dict/list methods templates call.
// Values follow Python semantics (printing, equality, truthiness, errors),
// which is what existing Go Jinja engines got wrong on real templates.
// Template-specific globals (raise_exception, strftime_now) are supplied by
// the caller as Func values.
package jinja
