//! Ruby's `to_yaml` (Psych 4 over libyaml 0.2.5) for [`Ruby`] values, byte for byte: Psych's choice of
//! scalar style, libyaml's block layout (2-space indent, sequences not indented under a key, empty
//! collections as `[]`/`{}`), its quoting rules and its line folding at 80 columns.

use super::ruby::{Key, Ruby};
use scan::{Style, float_to_s, string_style};

mod scan;

const BEST_WIDTH: usize = 80;
const BEST_INDENT: i64 = 2;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Root,
    Key,
    Value,
    Item,
}

/// Renders `v` as Ruby's `v.to_yaml` does.
pub fn to_yaml(v: &Ruby) -> String {
    let mut e = Emitter {
        out: String::new(),
        column: 0,
        indent: -1,
        whitespace: true,
        indention: true,
        open_ended: false,
    };
    e.write_indent();
    e.indicator("---", true, false, false);
    e.node(v, Ctx::Root);
    e.write_indent();
    if e.open_ended {
        e.indicator("...", true, false, false);
        e.write_indent();
    }
    e.out
}

struct Emitter {
    out: String,
    column: usize,
    indent: i64,
    whitespace: bool,
    indention: bool,
    /// A `|+` literal was the last block scalar written: libyaml then ends the document with `...`.
    open_ended: bool,
}

impl Emitter {
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    fn indicator(&mut self, text: &str, need_ws: bool, is_ws: bool, is_indention: bool) {
        if need_ws && !self.whitespace {
            self.put(' ');
        }
        for c in text.chars() {
            self.put(c);
        }
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
    }

    fn node(&mut self, v: &Ruby, ctx: Ctx) {
        match v {
            Ruby::Hash(entries) if entries.is_empty() => self.empty("{", "}"),
            Ruby::Array(items) if items.is_empty() => self.empty("[", "]"),
            Ruby::Hash(entries) => self.mapping(entries),
            Ruby::Array(items) => {
                let indentless = ctx == Ctx::Value && !self.indention;
                self.sequence(items, indentless);
            }
            Ruby::Nil => self.scalar("", Style::Plain, ctx),
            Ruby::Bool(b) => self.scalar(if *b { "true" } else { "false" }, Style::Plain, ctx),
            Ruby::Int(i) => self.scalar(&i.to_string(), Style::Plain, ctx),
            Ruby::Float(f) => self.scalar(&float_to_s(*f), Style::Plain, ctx),
            Ruby::Str(s) => self.scalar(s, string_style(s), ctx),
        }
    }

    fn empty(&mut self, open: &str, close: &str) {
        self.indicator(open, true, true, false);
        self.indicator(close, false, false, false);
    }

    fn mapping(&mut self, entries: &[(Key, Ruby)]) {
        let saved = self.indent;
        self.increase_indent(false, false);
        for (k, v) in entries {
            self.write_indent();
            let (text, style) = match k {
                Key::Sym(s) => (format!(":{s}"), Style::Plain),
                Key::Str(s) => (s.clone(), string_style(s)),
            };
            let simple = text.chars().count() <= 128 && !analyze(&text).multiline;
            if simple {
                self.scalar(&text, style, Ctx::Key);
                self.indicator(":", false, false, false);
            } else {
                self.indicator("?", true, false, true);
                self.scalar(&text, style, Ctx::Value);
                self.write_indent();
                self.indicator(":", true, false, true);
            }
            self.node(v, Ctx::Value);
        }
        self.indent = saved;
    }

    fn sequence(&mut self, items: &[Ruby], indentless: bool) {
        let saved = self.indent;
        self.increase_indent(false, indentless);
        for item in items {
            self.write_indent();
            self.indicator("-", true, false, true);
            self.node(item, Ctx::Item);
        }
        self.indent = saved;
    }

    fn scalar(&mut self, text: &str, requested: Style, ctx: Ctx) {
        let a = analyze(text);
        let simple_key = ctx == Ctx::Key;
        let mut style = requested;
        if simple_key && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain && (!a.block_plain || (text.is_empty() && simple_key)) {
            style = Style::Single;
        }
        if style == Style::Single && !a.single {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block || simple_key) {
            style = Style::Double;
        }
        let saved = self.indent;
        self.increase_indent(true, false);
        let chars: Vec<char> = text.chars().collect();
        match style {
            Style::Plain => self.plain(&chars, !simple_key),
            Style::Single => self.single(&chars, !simple_key),
            Style::Double => self.double(&chars, !simple_key),
            Style::Literal => self.literal(&chars),
        }
        self.indent = saved;
    }

    fn plain(&mut self, s: &[char], allow_breaks: bool) {
        if !self.whitespace && !s.is_empty() {
            self.put(' ');
        }
        let mut spaces = false;
        for (i, &c) in s.iter().enumerate() {
            if c == ' ' {
                if allow_breaks && !spaces && self.column > BEST_WIDTH && s.get(i + 1) != Some(&' ')
                {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                self.indention = false;
                spaces = false;
            }
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn single(&mut self, s: &[char], allow_breaks: bool) {
        self.indicator("'", true, false, false);
        let (mut spaces, mut breaks) = (false, false);
        for (i, &c) in s.iter().enumerate() {
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i != 0
                    && i + 1 != s.len()
                    && s.get(i + 1) != Some(&' ')
                {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        if breaks {
            self.write_indent();
        }
        self.indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn double(&mut self, s: &[char], allow_breaks: bool) {
        self.indicator("\"", true, false, false);
        let mut spaces = false;
        for (i, &c) in s.iter().enumerate() {
            if !is_printable(c) || c == '\u{FEFF}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                let code = u32::from(c);
                let short = match c {
                    '\0' => Some('0'),
                    '\u{7}' => Some('a'),
                    '\u{8}' => Some('b'),
                    '\t' => Some('t'),
                    '\n' => Some('n'),
                    '\u{B}' => Some('v'),
                    '\u{C}' => Some('f'),
                    '\r' => Some('r'),
                    '\u{1B}' => Some('e'),
                    '"' => Some('"'),
                    '\\' => Some('\\'),
                    '\u{85}' => Some('N'),
                    '\u{A0}' => Some('_'),
                    '\u{2028}' => Some('L'),
                    '\u{2029}' => Some('P'),
                    _ => None,
                };
                match short {
                    Some(e) => self.put(e),
                    None => {
                        let (tag, width) = match code {
                            0..=0xFF => ('x', 2),
                            0x100..=0xFFFF => ('u', 4),
                            _ => ('U', 8),
                        };
                        self.put(tag);
                        for ch in format!("{code:0width$X}").chars() {
                            self.put(ch);
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks && !spaces && self.column > BEST_WIDTH && i != 0 && i + 1 != s.len()
                {
                    self.write_indent();
                    if s.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn literal(&mut self, s: &[char]) {
        self.indicator("|", true, false, false);
        if s.first().is_some_and(|&c| c == ' ' || is_break(c)) {
            self.indicator(&BEST_INDENT.to_string(), false, false, false);
        }
        let last_break = s.last().is_some_and(|&c| is_break(c));
        let keep = last_break && (s.len() == 1 || is_break(s[s.len() - 2]));
        if !last_break {
            self.indicator("-", false, false, false);
        } else if keep {
            self.indicator("+", false, false, false);
        }
        self.open_ended = keep;
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for &c in s {
            if is_break(c) {
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// libyaml's `IS_PRINTABLE` (which leaves out NEL and everything above U+FFFF).
fn is_printable(c: char) -> bool {
    matches!(c, '\n' | ' '..='~' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        && c != '\u{FEFF}'
}

fn is_blankz(c: Option<&char>) -> bool {
    c.is_none_or(|&c| c == ' ' || c == '\t' || is_break(c))
}

/// What libyaml's `yaml_emitter_analyze_scalar` allows for a scalar in block context.
struct Analysis {
    multiline: bool,
    block_plain: bool,
    single: bool,
    block: bool,
}

fn analyze(text: &str) -> Analysis {
    let s: Vec<char> = text.chars().collect();
    if s.is_empty() {
        return Analysis {
            multiline: false,
            block_plain: true,
            single: true,
            block: false,
        };
    }
    let mut block_indicators = text.starts_with("---") || text.starts_with("...");
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_ws = true;
    for (i, &c) in s.iter().enumerate() {
        let followed_by_ws = is_blankz(s.get(i + 1));
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) || (c == '-' && followed_by_ws) {
                block_indicators = true;
            }
            if (c == '?' || c == ':') && followed_by_ws {
                block_indicators = true;
            }
        } else if (c == ':' && followed_by_ws) || (c == '#' && preceded_by_ws) {
            block_indicators = true;
        }
        if !is_printable(c) {
            special = true;
        }
        let last = i + 1 == s.len();
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= last;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= last;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_ws = is_blankz(Some(&c));
    }
    let edges = leading_space || leading_break || trailing_space || trailing_break;
    Analysis {
        multiline: line_breaks,
        block_plain: !(edges
            || break_space
            || space_break
            || special
            || line_breaks
            || block_indicators),
        single: !(break_space || space_break || special),
        block: !(trailing_space || space_break || special),
    }
}

#[cfg(test)]
mod tests;
