//! The simulated shell's syntax: words (quotes, `$VAR`, `${VAR}`, backslashes, comments), pipelines,
//! `;`/newline/`&`, `&&`, `||` and redirections (`>`, `>>`, `<`, `2>`, `2>&1`, `>&2`). Anything else
//! (`$(...)`, backquotes, subshells, compound commands) is refused with a syntax error.

/// Tokens one script may hold.
pub const MAX_TOKENS: usize = 100_000;

/// A piece of a word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Literal text.
    Lit(String),
    /// A parameter to expand (`HOME`, `?`, `#`, `@`, `1`).
    Var(String),
}

/// A word before expansion.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Word(pub Vec<Part>);

/// A redirection of a simple command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// `>`/`>>` (fd 1) or `2>`/`2>>` (fd 2) to a file.
    Out {
        /// 1 or 2.
        fd: u8,
        /// `>>`.
        append: bool,
        /// The file.
        target: Word,
    },
    /// `< file`.
    In(Word),
    /// `2>&1`: stderr joins stdout.
    ErrToOut,
    /// `>&2` / `1>&2`: stdout goes to stderr.
    OutToErr,
}

/// A simple command: words (the first names the program; leading `NAME=value` words are assignments).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    /// The words.
    pub words: Vec<Word>,
    /// The redirections, in order.
    pub redirects: Vec<Redirect>,
}

/// Commands joined by `|`, the last one's status counts (`!` negates it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pipeline {
    /// The commands.
    pub commands: Vec<Command>,
    /// Starts with `!`.
    pub negate: bool,
}

/// How a pipeline follows the previous one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connector {
    /// `;`, a newline or `&` (run in order: nothing runs in the background).
    Seq,
    /// `&&`.
    And,
    /// `||`.
    Or,
}

/// A whole script.
pub type Script = Vec<(Connector, Pipeline)>;

/// Why a script could not be parsed (a shell's exit status 2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("syntax error: {0}")]
pub struct SyntaxError(pub String);

#[derive(Debug, PartialEq)]
enum Token {
    Word(Word),
    Op(&'static str),
    Redirect(Redirect),
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    tokens: Vec<Token>,
}

fn err<T>(message: &str) -> Result<T, SyntaxError> {
    Err(SyntaxError(message.to_string()))
}

impl Lexer<'_> {
    fn push(&mut self, t: Token) -> Result<(), SyntaxError> {
        if self.tokens.len() >= MAX_TOKENS {
            return err("script too long");
        }
        self.tokens.push(t);
        Ok(())
    }

    /// A parameter after `$` (the `$` consumed), into `parts`.
    fn dollar(&mut self, parts: &mut Vec<Part>, lit: &mut String) -> Result<(), SyntaxError> {
        let flush = |parts: &mut Vec<Part>, lit: &mut String, var: String| {
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(lit)));
            }
            parts.push(Part::Var(var));
        };
        match self.chars.peek().copied() {
            Some('{') => {
                self.chars.next();
                let mut name = String::new();
                loop {
                    match self.chars.next() {
                        Some('}') => break,
                        Some(c) if c.is_ascii_alphanumeric() || c == '_' || "?#@*".contains(c) => {
                            name.push(c)
                        }
                        _ => return err("bad ${...} substitution"),
                    }
                }
                flush(parts, lit, name);
            }
            Some('(') => return err("command substitution $(...) is not simulated"),
            Some(c) if "?#@*$!0123456789".contains(c) => {
                self.chars.next();
                flush(parts, lit, c.to_string());
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let mut name = String::new();
                while let Some(&c) = self.chars.peek() {
                    if !(c.is_ascii_alphanumeric() || c == '_') {
                        break;
                    }
                    name.push(c);
                    self.chars.next();
                }
                flush(parts, lit, name);
            }
            _ => lit.push('$'),
        }
        Ok(())
    }

    /// One word starting at the current character.
    fn word(&mut self) -> Result<Word, SyntaxError> {
        let (mut parts, mut lit) = (Vec::new(), String::new());
        while let Some(&c) = self.chars.peek() {
            match c {
                ' ' | '\t' | '\n' | '\r' | ';' | '&' | '|' | '<' | '>' => break,
                '(' | ')' | '`' => return err("subshells and backquotes are not simulated"),
                '\'' => {
                    self.chars.next();
                    loop {
                        match self.chars.next() {
                            Some('\'') => break,
                            Some(c) => lit.push(c),
                            None => return err("unterminated quoted string"),
                        }
                    }
                }
                '"' => {
                    self.chars.next();
                    loop {
                        match self.chars.next() {
                            Some('"') => break,
                            Some('\\') => match self.chars.next() {
                                Some(c @ ('"' | '\\' | '$' | '`')) => lit.push(c),
                                Some('\n') => {}
                                Some(c) => {
                                    lit.push('\\');
                                    lit.push(c);
                                }
                                None => return err("unterminated quoted string"),
                            },
                            Some('$') => self.dollar(&mut parts, &mut lit)?,
                            Some('`') => return err("backquotes are not simulated"),
                            Some(c) => lit.push(c),
                            None => return err("unterminated quoted string"),
                        }
                    }
                    // An empty "" still makes a word.
                    if parts.is_empty() && lit.is_empty() {
                        parts.push(Part::Lit(String::new()));
                    }
                }
                '\\' => {
                    self.chars.next();
                    match self.chars.next() {
                        Some('\n') | None => {}
                        Some(c) => lit.push(c),
                    }
                }
                '$' => {
                    self.chars.next();
                    self.dollar(&mut parts, &mut lit)?;
                }
                c => {
                    self.chars.next();
                    lit.push(c);
                }
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Word(parts))
    }

    /// A redirection starting at `<` or `>` for file descriptor `fd`.
    fn redirect(&mut self, fd: u8) -> Result<(), SyntaxError> {
        let Some(first) = self.chars.next() else {
            return err("bad redirection");
        };
        if first == '<' {
            let target = self.target()?;
            return self.push(Token::Redirect(Redirect::In(target)));
        }
        let append = self.chars.peek() == Some(&'>');
        if append {
            self.chars.next();
        }
        if !append && self.chars.peek() == Some(&'&') {
            self.chars.next();
            let r = match (fd, self.chars.next()) {
                (2, Some('1')) => Redirect::ErrToOut,
                (1, Some('2')) => Redirect::OutToErr,
                _ => return err("unsupported descriptor duplication"),
            };
            return self.push(Token::Redirect(r));
        }
        let target = self.target()?;
        self.push(Token::Redirect(Redirect::Out { fd, append, target }))
    }

    /// The word a redirection names.
    fn target(&mut self) -> Result<Word, SyntaxError> {
        while matches!(self.chars.peek(), Some(' ' | '\t')) {
            self.chars.next();
        }
        let w = self.word()?;
        if w.0.is_empty() {
            return err("redirection without a file");
        }
        Ok(w)
    }

    fn run(mut self) -> Result<Vec<Token>, SyntaxError> {
        while let Some(&c) = self.chars.peek() {
            match c {
                ' ' | '\t' | '\r' => {
                    self.chars.next();
                }
                '#' => {
                    while self.chars.peek().is_some_and(|&c| c != '\n') {
                        self.chars.next();
                    }
                }
                '\n' | ';' => {
                    self.chars.next();
                    self.push(Token::Op(";"))?;
                }
                '&' | '|' => {
                    self.chars.next();
                    let op = match (c, self.chars.peek() == Some(&c)) {
                        ('&', true) => "&&",
                        ('|', true) => "||",
                        ('&', false) => ";",
                        _ => "|",
                    };
                    if op.len() == 2 {
                        self.chars.next();
                    }
                    self.push(Token::Op(op))?;
                }
                '<' | '>' => self.redirect(1)?,
                _ => {
                    let w = self.word()?;
                    // `2>` and `1>`: a lone unquoted digit right before a redirection.
                    let fd = match (w.0.as_slice(), self.chars.peek()) {
                        ([Part::Lit(d)], Some(&'>')) if d == "1" || d == "2" => d.parse().ok(),
                        _ => None,
                    };
                    match fd {
                        Some(fd) => self.redirect(fd)?,
                        None => self.push(Token::Word(w))?,
                    }
                }
            }
        }
        Ok(self.tokens)
    }
}

/// Parses `text` into pipelines joined by connectors.
pub fn parse(text: &str) -> Result<Script, SyntaxError> {
    let tokens = Lexer {
        chars: text.chars().peekable(),
        tokens: Vec::new(),
    }
    .run()?;
    let mut script: Script = Vec::new();
    let mut connector = Connector::Seq;
    let mut pipeline = Pipeline::default();
    let mut command = Command::default();
    let mut pending_op = false;
    for token in tokens {
        match token {
            Token::Word(w) => {
                if command.words.is_empty()
                    && command.redirects.is_empty()
                    && w.0 == [Part::Lit("!".into())]
                {
                    pipeline.negate = !pipeline.negate;
                } else {
                    command.words.push(w);
                }
                pending_op = false;
            }
            Token::Redirect(r) => {
                command.redirects.push(r);
                pending_op = false;
            }
            Token::Op("|") => {
                if command.words.is_empty() {
                    return err("unexpected `|`");
                }
                pipeline.commands.push(std::mem::take(&mut command));
                pending_op = true;
            }
            Token::Op(op) => {
                let empty = command.words.is_empty() && command.redirects.is_empty();
                if empty && (op != ";" || pending_op || !pipeline.commands.is_empty()) {
                    return err(&format!("unexpected `{op}`"));
                }
                if !empty {
                    pipeline.commands.push(std::mem::take(&mut command));
                    script.push((connector, std::mem::take(&mut pipeline)));
                }
                connector = match op {
                    "&&" => Connector::And,
                    "||" => Connector::Or,
                    _ => Connector::Seq,
                };
                pending_op = op != ";";
            }
        }
    }
    if pending_op {
        return err("unexpected end of script");
    }
    if !command.words.is_empty() || !command.redirects.is_empty() {
        pipeline.commands.push(command);
        script.push((connector, pipeline));
    }
    Ok(script)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Word {
        Word(vec![Part::Lit(s.into())])
    }

    #[test]
    fn words_quotes_variables_and_operators() {
        let s = parse("echo 'a b' \"x$HOME-${N}\" && cat f 2>/dev/null || true; ls|wc\n").unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].1.commands[0].words[1], lit("a b"));
        assert_eq!(
            s[0].1.commands[0].words[2],
            Word(vec![
                Part::Lit("x".into()),
                Part::Var("HOME".into()),
                Part::Lit("-".into()),
                Part::Var("N".into())
            ])
        );
        assert_eq!(s[1].0, Connector::And);
        assert_eq!(
            s[1].1.commands[0].redirects,
            vec![Redirect::Out {
                fd: 2,
                append: false,
                target: lit("/dev/null")
            }]
        );
        assert_eq!(s[2].0, Connector::Or);
        assert_eq!(s[3].1.commands.len(), 2);
    }

    #[test]
    fn unsupported_or_broken_syntax_is_an_error() {
        for bad in [
            "echo $(id)",
            "echo `id`",
            "(ls)",
            "echo 'x",
            "&& ls",
            "ls |",
            "ls && && ls",
            "echo >",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse("# only a comment\n\n").unwrap(), Vec::new());
    }
}
