//! Timeout expressions of `n` in Kadeploy's Ruby-style syntax (`200 + 150 * Math.log(n)`).
//!
//! Kadeploy evaluates `timeouts/reboot`, `timeouts/kexec` and the clients' `timeout_reboot_*` strings as Ruby code
//! with `n` bound to the number of nodes being waited for. This module implements the small arithmetic subset those
//! strings use, with Ruby's semantics:
//!
//! - integer and float literals (`60`, `1.5`, `1e3`, `1_000`), the variable `n` (an Integer when integral);
//! - `+ - * / % **` with Ruby precedence: `**` is right-associative and binds tighter than unary minus
//!   (`-2 ** 2 == -4`), then `* / %`, then `+ -`; parentheses;
//! - Integer arithmetic stays Integer: `7 / 2 == 3` (floor division, like Ruby), `7 % -2 == -1`; an overflow
//!   continues in floating point (Ruby would switch to a Bignum);
//! - `Math.log(x)` (natural), `Math.log(x, base)`, `Math.log2`, `Math.log10`, `Math.sqrt`, `Math.cbrt`, `Math.exp`,
//!   also written `Math::log` or bare `log`; the constants `Math::PI` and `Math::E`;
//! - postfix calls `.to_i`, `.to_f`, `.round`, `.ceil`, `.floor`, `.truncate`, `.abs` (with or without `()`).
//!
//! Parsing never panics; inputs longer than [`MAX_SOURCE_LEN`] or nested deeper than [`MAX_DEPTH`] are rejected.

mod eval;
mod parse;

use std::fmt;

/// Longest accepted expression source, in bytes.
pub const MAX_SOURCE_LEN: usize = 4096;

/// Deepest accepted nesting of parentheses, unary operators and exponents.
pub const MAX_DEPTH: usize = 64;

/// A parsed timeout expression of `n`.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    source: String,
    root: Node,
}

/// Why an expression could not be parsed or evaluated.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExprError {
    /// The text is not a valid expression.
    #[error("invalid expression `{expr}` at column {column}: {message}")]
    Syntax {
        /// The expression text (truncated when very long).
        expr: String,
        /// 1-based column (in characters) of the problem.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Evaluation failed (division by zero, domain error of a function...).
    #[error("cannot evaluate `{expr}` with n = {n}: {message}")]
    Eval {
        /// The expression text.
        expr: String,
        /// The value of `n`.
        n: f64,
        /// What went wrong.
        message: String,
    },
    /// The result is not a usable duration: NaN, infinite or negative.
    #[error("expression `{expr}` with n = {n} gives {value}, which is not a valid duration")]
    BadResult {
        /// The expression text.
        expr: String,
        /// The value of `n`.
        n: f64,
        /// The result.
        value: f64,
    },
}

/// A Ruby number: Integer or Float.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Num {
    /// A Ruby Integer (Fixnum range).
    Int(i64),
    /// A Ruby Float.
    Float(f64),
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

/// Functions of the `Math` module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Func {
    /// `log(x)` or `log(x, base)`.
    Log,
    Log2,
    Log10,
    Sqrt,
    Cbrt,
    Exp,
}

/// Postfix method calls on numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    ToI,
    ToF,
    Round,
    Ceil,
    Floor,
    Abs,
}

/// Syntax tree of an expression.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    /// A literal.
    Lit(Num),
    /// The variable `n`.
    N,
    /// Unary minus.
    Neg(Box<Node>),
    /// A binary operation.
    Binary(BinOp, Box<Node>, Box<Node>),
    /// A `Math` function call with its arguments.
    Call(Func, Vec<Node>),
    /// A postfix method call.
    Method(Box<Node>, Method),
}

impl Expr {
    /// Parses a Ruby-style expression of `n`; surrounding blanks are ignored.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let source = text.trim();
        let root = parse::parse(source)?;
        Ok(Expr {
            source: source.to_string(),
            root,
        })
    }

    /// An expression that always evaluates to `value` (an Integer literal when `value` is integral).
    pub fn constant(value: f64) -> Expr {
        let num = if value.fract() == 0.0 && value.abs() < 9.0e15 {
            Num::Int(value as i64)
        } else {
            Num::Float(value)
        };
        let source = match num {
            Num::Int(i) => i.to_string(),
            Num::Float(f) => format!("{f:?}"),
        };
        Expr {
            source,
            root: Node::Lit(num),
        }
    }

    /// Evaluates the expression with `n` nodes; the result is a finite, non-negative number of seconds.
    pub fn eval(&self, n: f64) -> Result<f64, ExprError> {
        let value = eval::eval(&self.root, Num::from_f64(n))
            .map_err(|message| ExprError::Eval {
                expr: self.source.clone(),
                n,
                message,
            })?
            .to_f64();
        if !value.is_finite() || value < 0.0 {
            return Err(ExprError::BadResult {
                expr: self.source.clone(),
                n,
                value,
            });
        }
        // Normalises -0.0.
        Ok(value + 0.0)
    }

    /// The expression text, as given (trimmed).
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Num {
    /// `n` as Ruby would see it: an Integer when integral.
    pub(crate) fn from_f64(value: f64) -> Num {
        if value.fract() == 0.0 && value.abs() < 9.0e15 {
            Num::Int(value as i64)
        } else {
            Num::Float(value)
        }
    }

    /// The value as a float.
    pub(crate) fn to_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(text: &str, n: f64) -> f64 {
        match Expr::parse(text).and_then(|e| e.eval(n)) {
            Ok(v) => v,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn kadeploy_examples() {
        assert_eq!(ev("60", 10.0), 60.0);
        assert!(close(
            ev("200 + 150 * Math.log(n)", 10.0),
            200.0 + 150.0 * 10f64.ln()
        ));
        assert_eq!(ev("200 + 150 * Math.log(n)", 1.0), 200.0);
        assert!(close(ev("(n ** 0.5) * 10", 16.0), 40.0));
        assert!(close(ev("Math.sqrt(n)+Math.log2(n)*3", 16.0), 4.0 + 12.0));
        assert_eq!(ev("100 + n/10", 25.0), 102.0);
        assert!(close(ev("100 + n/10.0", 25.0), 102.5));
    }

    #[test]
    fn ruby_integer_semantics() {
        assert_eq!(ev("7/2", 0.0), 3.0);
        assert_eq!(ev("-7/2 + 10", 0.0), 6.0); // Ruby floors: -7/2 == -4
        assert_eq!(ev("7 % 3", 0.0), 1.0);
        assert_eq!(ev("10 + -7 % 3", 0.0), 12.0); // -7 % 3 == 2
        assert_eq!(ev("7.0/2", 0.0), 3.5);
        assert_eq!(ev("2 ** 10", 0.0), 1024.0);
        assert_eq!(ev("2 ** -1", 0.0), 0.5);
        assert_eq!(ev("2 ** 3 ** 2", 0.0), 512.0);
        assert_eq!(ev("10 + -2 ** 2", 0.0), 6.0); // -(2 ** 2)
        assert_eq!(ev("(-2) ** 2", 0.0), 4.0);
        assert_eq!(ev("2 * 3 + 4 * 5 - 6 / 2", 0.0), 23.0);
        assert_eq!(ev("+3 - -2", 0.0), 5.0);
        assert_eq!(ev("1_000 + 1e2 + 2.5e-1", 0.0), 1100.25);
        // i64 overflow continues in floating point, like a Bignum.
        assert_eq!(
            ev("9223372036854775807 + 1", 0.0),
            9_223_372_036_854_775_808.0
        );
    }

    #[test]
    fn functions_and_methods() {
        assert!(close(ev("Math.log(8, 2)", 0.0), 3.0));
        assert!(close(ev("log10(1000) + sqrt(4) + Math::log2(8)", 0.0), 8.0));
        assert!(close(ev("Math.exp(0) + Math.cbrt(27)", 0.0), 4.0));
        assert!(close(ev("Math::PI.round + Math::E.floor", 0.0), 5.0));
        assert_eq!(ev("(n * 1.5).to_i", 3.0), 4.0);
        assert_eq!(ev("(n * 1.5).ceil()", 3.0), 5.0);
        assert_eq!(ev("2.5.round", 0.0), 3.0);
        assert_eq!(ev("(n / 2).to_f * 2", 3.0), 2.0);
        assert_eq!(ev("(0 - n).abs", 3.0), 3.0);
        assert_eq!(ev("Math.log(n).floor + 1", 100.0), 5.0);
    }

    #[test]
    fn api() {
        let e = Expr::parse("  200 + n ").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.source(), "200 + n");
        assert_eq!(e.to_string(), "200 + n");
        assert_eq!(
            Expr::constant(60.0),
            Expr::parse("60").unwrap_or_else(|e| panic!("{e}"))
        );
        assert_eq!(Expr::constant(60.0).source(), "60");
        assert_eq!(Expr::constant(1.5).eval(7.0), Ok(1.5));
        assert_eq!(Expr::constant(1.5).source(), "1.5");
    }

    #[test]
    fn syntax_errors() {
        let column = |text: &str| match Expr::parse(text) {
            Err(ExprError::Syntax { column, .. }) => column,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(column(""), 1);
        assert_eq!(column("1 +"), 4);
        assert_eq!(column("(1 + 2"), 7);
        assert_eq!(column("1 + x"), 5);
        assert_eq!(column("Math.foo(n)"), 6);
        assert_eq!(column("n.bar"), 3);
        assert_eq!(column("1 $ 2"), 3);
        assert_eq!(column("2 3"), 3);
        assert_eq!(column("log(1, 2, 3)"), 12);
        assert_eq!(column("é"), 1);
        let deep = format!("{}1{}", "(".repeat(100), ")".repeat(100));
        assert!(matches!(Expr::parse(&deep), Err(ExprError::Syntax { .. })));
        assert!(matches!(
            Expr::parse(&"-".repeat(10_000)),
            Err(ExprError::Syntax { .. })
        ));
        let message = Expr::parse("1 +").map(|_| ()).unwrap_err().to_string();
        assert_eq!(
            message,
            "invalid expression `1 +` at column 4: unexpected end of expression"
        );
    }

    #[test]
    fn evaluation_errors() {
        let err = |text: &str, n: f64| Expr::parse(text).and_then(|e| e.eval(n)).unwrap_err();
        assert!(matches!(err("1/0", 1.0), ExprError::Eval { .. }));
        assert!(matches!(err("n % 0", 1.0), ExprError::Eval { .. }));
        assert!(matches!(err("Math.log(-n)", 1.0), ExprError::Eval { .. }));
        assert!(matches!(err("sqrt(0 - n)", 1.0), ExprError::Eval { .. }));
        assert!(matches!(err("(1.0/0).to_i", 1.0), ExprError::Eval { .. }));
        assert!(matches!(err("1.0/0", 1.0), ExprError::BadResult { .. }));
        assert!(matches!(
            err("Math.log(n)", 0.0),
            ExprError::BadResult { .. }
        ));
        assert!(matches!(err("10 - n", 11.0), ExprError::BadResult { .. }));
        assert!(matches!(err("n", f64::NAN), ExprError::BadResult { .. }));
        assert_eq!(
            err("100 - n", 200.0).to_string(),
            "expression `100 - n` with n = 200 gives -100, which is not a valid duration"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn never_panics(text in "[0-9n+*/%().,_eE :a-zA-Z-]{0,40}", n in -5.0f64..1e6) {
            if let Ok(expr) = Expr::parse(&text) {
                let _ = expr.eval(n);
            }
        }

        #[test]
        fn never_panics_on_any_string(text in "\\PC{0,60}") {
            let _ = Expr::parse(&text).and_then(|e| e.eval(3.0));
        }
    }
}
