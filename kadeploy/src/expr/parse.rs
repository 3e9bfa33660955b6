//! Lexer and recursive-descent parser of timeout expressions (Ruby precedence).

use super::{BinOp, ExprError, Func, MAX_DEPTH, MAX_SOURCE_LEN, Method, Node, Num};

/// A token and the byte offset where it starts.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(Num),
    Ident(String),
    Plus,
    Minus,
    Star,
    StarStar,
    Slash,
    Percent,
    LParen,
    RParen,
    Comma,
    Dot,
    ColonColon,
    End,
}

/// Parses `source` (already trimmed) into a syntax tree.
pub(super) fn parse(source: &str) -> Result<Node, ExprError> {
    let fail = |pos: usize, message: &str| syntax(source, pos, message);
    if source.len() > MAX_SOURCE_LEN {
        return Err(fail(MAX_SOURCE_LEN, "expression too long"));
    }
    if source.is_empty() {
        return Err(fail(0, "empty expression"));
    }
    let tokens = lex(source)?;
    let mut parser = Parser {
        source,
        tokens,
        next: 0,
        depth: 0,
    };
    let root = parser.expr()?;
    match parser.peek() {
        Tok::End => Ok(root),
        tok => Err(fail(parser.pos(), &format!("unexpected {}", describe(tok)))),
    }
}

/// A syntax error at byte offset `pos` of `source`.
fn syntax(source: &str, pos: usize, message: &str) -> ExprError {
    let shown: String = source.chars().take(200).collect();
    let column = source.get(..pos).map_or(pos, |head| head.chars().count()) + 1;
    ExprError::Syntax {
        expr: shown,
        column,
        message: message.to_string(),
    }
}

/// How a token is named in error messages.
fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Num(_) => "number".into(),
        Tok::Ident(name) => format!("`{name}`"),
        Tok::End => "end of expression".into(),
        Tok::Plus => "`+`".into(),
        Tok::Minus => "`-`".into(),
        Tok::Star => "`*`".into(),
        Tok::StarStar => "`**`".into(),
        Tok::Slash => "`/`".into(),
        Tok::Percent => "`%`".into(),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::Comma => "`,`".into(),
        Tok::Dot => "`.`".into(),
        Tok::ColonColon => "`::`".into(),
    }
}

/// Splits `source` into tokens, each with its byte offset; the last one is `End`.
fn lex(source: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let single = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'+' => Some(Tok::Plus),
            b'-' => Some(Tok::Minus),
            b'/' => Some(Tok::Slash),
            b'%' => Some(Tok::Percent),
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b',' => Some(Tok::Comma),
            b'.' => Some(Tok::Dot),
            _ => None,
        };
        if let Some(tok) = single {
            out.push((tok, start));
            i += 1;
        } else if c == b'*' {
            let double = bytes.get(i + 1) == Some(&b'*');
            out.push((if double { Tok::StarStar } else { Tok::Star }, start));
            i += if double { 2 } else { 1 };
        } else if c == b':' && bytes.get(i + 1) == Some(&b':') {
            out.push((Tok::ColonColon, start));
            i += 2;
        } else if c.is_ascii_digit() {
            let (num, end) = lex_number(source, start)?;
            out.push((Tok::Num(num), start));
            i = end;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Ident(source[start..i].to_string()), start));
        } else {
            let shown = source[start..].chars().next().unwrap_or('?');
            return Err(syntax(
                source,
                start,
                &format!("unexpected character `{shown}`"),
            ));
        }
    }
    out.push((Tok::End, source.len()));
    Ok(out)
}

/// Reads a number literal at `start`: digits with `_` separators, an optional fraction and exponent.
fn lex_number(source: &str, start: usize) -> Result<(Num, usize), ExprError> {
    let bytes = source.as_bytes();
    let digits = |mut i: usize| -> Result<usize, ExprError> {
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
            if bytes[i] == b'_' && !bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                return Err(syntax(source, i, "trailing `_` in number"));
            }
            i += 1;
        }
        Ok(i)
    };
    let mut end = digits(start)?;
    let mut float = false;
    if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
        float = true;
        end = digits(end + 1)?;
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let mut j = end + 1;
        if matches!(bytes.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if bytes.get(j).is_some_and(u8::is_ascii_digit) {
            float = true;
            end = digits(j)?;
        }
    }
    let text: String = source[start..end].chars().filter(|&c| c != '_').collect();
    let num = if float {
        text.parse::<f64>().map(Num::Float)
    } else {
        // An Integer too large for i64 would be a Bignum in Ruby: continue in floating point.
        text.parse::<i64>()
            .map(Num::Int)
            .or_else(|_| text.parse::<f64>().map(Num::Float))
    };
    num.map(|n| (n, end))
        .map_err(|_| syntax(source, start, "invalid number"))
}

/// Recursive-descent parser over the token list.
struct Parser<'a> {
    source: &'a str,
    tokens: Vec<(Tok, usize)>,
    next: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        self.tokens.get(self.next).map_or(&Tok::End, |(tok, _)| tok)
    }

    fn pos(&self) -> usize {
        self.tokens
            .get(self.next)
            .map_or(self.source.len(), |(_, pos)| *pos)
    }

    fn bump(&mut self) -> Tok {
        let tok = self.peek().clone();
        if self.next < self.tokens.len() {
            self.next += 1;
        }
        tok
    }

    fn error(&self, message: &str) -> ExprError {
        syntax(self.source, self.pos(), message)
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), ExprError> {
        if self.peek() == tok {
            self.bump();
            Ok(())
        } else {
            let found = describe(self.peek());
            Err(self.error(&format!("expected {}, found {found}", describe(tok))))
        }
    }

    /// Counts one nesting level; fails beyond [`MAX_DEPTH`].
    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("expression nested too deeply"));
        }
        Ok(())
    }

    /// `term (('+' | '-') term)*`
    fn expr(&mut self) -> Result<Node, ExprError> {
        let mut left = self.term()?;
        loop {
            let op = match self.peek() {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => return Ok(left),
            };
            self.bump();
            let right = self.term()?;
            left = Node::Binary(op, Box::new(left), Box::new(right));
        }
    }

    /// `unary (('*' | '/' | '%') unary)*`
    fn term(&mut self) -> Result<Node, ExprError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                Tok::Percent => BinOp::Mod,
                _ => return Ok(left),
            };
            self.bump();
            let right = self.unary()?;
            left = Node::Binary(op, Box::new(left), Box::new(right));
        }
    }

    /// `('-' | '+') unary | power`: unary minus binds looser than `**`.
    fn unary(&mut self) -> Result<Node, ExprError> {
        self.enter()?;
        let node = match self.peek() {
            Tok::Minus => {
                self.bump();
                Node::Neg(Box::new(self.unary()?))
            }
            Tok::Plus => {
                self.bump();
                self.unary()?
            }
            _ => self.power()?,
        };
        self.depth -= 1;
        Ok(node)
    }

    /// `postfix ('**' unary)?`: right-associative, and the exponent may be negated (`2 ** -1`).
    fn power(&mut self) -> Result<Node, ExprError> {
        let base = self.postfix()?;
        if *self.peek() != Tok::StarStar {
            return Ok(base);
        }
        self.bump();
        let exponent = self.unary()?;
        Ok(Node::Binary(BinOp::Pow, Box::new(base), Box::new(exponent)))
    }

    /// `primary ('.' method ('(' ')')?)*`
    fn postfix(&mut self) -> Result<Node, ExprError> {
        let mut node = self.primary()?;
        while *self.peek() == Tok::Dot {
            self.bump();
            let method = match self.bump() {
                Tok::Ident(name) => match name.as_str() {
                    "to_i" | "to_int" | "truncate" => Method::ToI,
                    "to_f" => Method::ToF,
                    "round" => Method::Round,
                    "ceil" => Method::Ceil,
                    "floor" => Method::Floor,
                    "abs" => Method::Abs,
                    _ => return Err(self.error_before(&format!("unknown method `{name}`"))),
                },
                _ => return Err(self.error_before("expected a method name after `.`")),
            };
            if *self.peek() == Tok::LParen {
                self.bump();
                self.expect(&Tok::RParen)?;
            }
            node = Node::Method(Box::new(node), method);
        }
        Ok(node)
    }

    /// An error located at the token just consumed.
    fn error_before(&self, message: &str) -> ExprError {
        let pos = self
            .next
            .checked_sub(1)
            .and_then(|i| self.tokens.get(i))
            .map_or(0, |(_, pos)| *pos);
        syntax(self.source, pos, message)
    }

    /// A number, `n`, a parenthesised expression, a `Math` function call or constant.
    fn primary(&mut self) -> Result<Node, ExprError> {
        match self.bump() {
            Tok::Num(num) => Ok(Node::Lit(num)),
            Tok::LParen => {
                self.enter()?;
                let inner = self.expr()?;
                self.expect(&Tok::RParen)?;
                self.depth -= 1;
                Ok(inner)
            }
            Tok::Ident(name) if name == "n" => Ok(Node::N),
            Tok::Ident(name) if name == "Math" => {
                match self.bump() {
                    Tok::Dot | Tok::ColonColon => {}
                    _ => return Err(self.error_before("expected `.` or `::` after `Math`")),
                }
                match self.bump() {
                    Tok::Ident(name) if name == "PI" => {
                        Ok(Node::Lit(Num::Float(std::f64::consts::PI)))
                    }
                    Tok::Ident(name) if name == "E" => {
                        Ok(Node::Lit(Num::Float(std::f64::consts::E)))
                    }
                    Tok::Ident(name) => self.call(&name),
                    _ => Err(self.error_before("expected a function name after `Math`")),
                }
            }
            Tok::Ident(name) => self.call(&name),
            Tok::End => Err(self.error("unexpected end of expression")),
            tok => Err(self.error_before(&format!("unexpected {}", describe(&tok)))),
        }
    }

    /// A function call whose name was just consumed: `name '(' args ')'`.
    fn call(&mut self, name: &str) -> Result<Node, ExprError> {
        let (func, max_args) = match name {
            "log" => (Func::Log, 2),
            "log2" => (Func::Log2, 1),
            "log10" => (Func::Log10, 1),
            "sqrt" => (Func::Sqrt, 1),
            "cbrt" => (Func::Cbrt, 1),
            "exp" => (Func::Exp, 1),
            _ => {
                return Err(self.error_before(&format!(
                    "unknown name `{name}` (only `n` and Math functions)"
                )));
            }
        };
        self.expect(&Tok::LParen)?;
        self.enter()?;
        let mut args = vec![self.expr()?];
        while *self.peek() == Tok::Comma {
            self.bump();
            args.push(self.expr()?);
        }
        self.expect(&Tok::RParen)?;
        self.depth -= 1;
        if args.len() > max_args {
            return Err(self.error_before(&format!("too many arguments to `{name}`")));
        }
        Ok(Node::Call(func, args))
    }
}
