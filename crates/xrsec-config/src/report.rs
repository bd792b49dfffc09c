//! The diagnostics sink shared by the parser and the validator: it knows the
//! source lines, so it can build masked excerpts for any position.
//!
//! Invariant: every excerpt goes through [`crate::lexer::excerpt`], so a
//! diagnostic built here never shows a pre-shared key.

use std::collections::HashSet;

use crate::diag::{Diagnostic, Severity, SourceExcerpt};
use crate::lexer;
use crate::model::Span;

pub(crate) struct Reporter<'a> {
    pub file: &'a str,
    pub lines: Vec<&'a str>,
    pub diags: Vec<Diagnostic>,
    /// Lines shown fully masked (the continuation of a split `pre-shared-key`).
    pub mask_all_lines: HashSet<usize>,
}

impl<'a> Reporter<'a> {
    pub fn new(file: &'a str, text: &'a str) -> Reporter<'a> {
        Reporter {
            file,
            lines: text.lines().collect(),
            diags: Vec::new(),
            mask_all_lines: HashSet::new(),
        }
    }

    pub fn excerpt(&self, line: usize, col: usize, len: usize) -> SourceExcerpt {
        let raw = line
            .checked_sub(1)
            .and_then(|i| self.lines.get(i))
            .copied()
            .unwrap_or("");
        let ex = lexer::excerpt(raw, self.mask_all_lines.contains(&line));
        let (caret_col, caret_len) = ex.place(col, len);
        SourceExcerpt {
            line,
            text: ex.text,
            caret_col,
            caret_len,
        }
    }

    pub fn make(&self, severity: Severity, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity,
            file: self.file.to_string(),
            line: span.line,
            col: span.col,
            message: message.into(),
            excerpt: Some(self.excerpt(span.line, span.col, span.len)),
            notes: Vec::new(),
        }
    }

    pub fn error(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.make(Severity::Error, span, message)
    }

    pub fn warning(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.make(Severity::Warning, span, message)
    }

    /// Adds a note pointing at `span` to `d`.
    pub fn note_at(&self, d: Diagnostic, span: Span, message: impl Into<String>) -> Diagnostic {
        let ex = self.excerpt(span.line, span.col, span.len);
        d.note_at(message, span.col, ex)
    }

    pub fn emit(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Diagnostics in source order (stable for equal positions).
    pub fn finish(mut self) -> Vec<Diagnostic> {
        self.diags.sort_by_key(|d| (d.line, d.col));
        self.diags
    }
}
