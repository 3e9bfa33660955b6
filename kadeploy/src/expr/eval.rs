//! Evaluation of a parsed expression with Ruby's Integer/Float semantics.

use super::{BinOp, Func, Method, Node, Num};

/// Evaluates `node` with `n`; errors are plain messages, wrapped by the caller.
pub(super) fn eval(node: &Node, n: Num) -> Result<Num, String> {
    match node {
        Node::Lit(num) => Ok(*num),
        Node::N => Ok(n),
        Node::Neg(inner) => Ok(match eval(inner, n)? {
            Num::Int(i) => i.checked_neg().map_or(Num::Float(-(i as f64)), Num::Int),
            Num::Float(f) => Num::Float(-f),
        }),
        Node::Binary(op, left, right) => binary(*op, eval(left, n)?, eval(right, n)?),
        Node::Call(func, args) => {
            let values = args
                .iter()
                .map(|arg| eval(arg, n).map(Num::to_f64))
                .collect::<Result<Vec<f64>, String>>()?;
            call(*func, &values)
        }
        Node::Method(inner, method) => apply(*method, eval(inner, n)?),
    }
}

/// A binary operation; Integer operands give an Integer except for negative powers.
fn binary(op: BinOp, a: Num, b: Num) -> Result<Num, String> {
    if let (Num::Int(x), Num::Int(y)) = (a, b)
        && let Some(result) = int_binary(op, x, y)?
    {
        return Ok(Num::Int(result));
    }
    let (x, y) = (a.to_f64(), b.to_f64());
    let result = match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
        BinOp::Mod => {
            // Ruby's modulo takes the sign of the divisor.
            let r = x % y;
            if r != 0.0 && (r < 0.0) != (y < 0.0) {
                r + y
            } else {
                r
            }
        }
        BinOp::Pow => x.powf(y),
    };
    if result.is_nan() && !x.is_nan() && !y.is_nan() {
        return Err(format!("{x} {} {y} is not a real number", symbol(op)));
    }
    Ok(Num::Float(result))
}

/// Integer arithmetic: `Ok(None)` when the result does not fit (or is not an Integer) and floats take over.
fn int_binary(op: BinOp, x: i64, y: i64) -> Result<Option<i64>, String> {
    Ok(match op {
        BinOp::Add => x.checked_add(y),
        BinOp::Sub => x.checked_sub(y),
        BinOp::Mul => x.checked_mul(y),
        BinOp::Div => {
            if y == 0 {
                return Err("divided by 0".into());
            }
            // Ruby floors the quotient.
            x.checked_div(y).map(|q| {
                if x % y != 0 && ((x < 0) != (y < 0)) {
                    q - 1
                } else {
                    q
                }
            })
        }
        BinOp::Mod => {
            if y == 0 {
                return Err("divided by 0".into());
            }
            x.checked_rem(y).map(|r| {
                if r != 0 && ((r < 0) != (y < 0)) {
                    r + y
                } else {
                    r
                }
            })
        }
        BinOp::Pow => u32::try_from(y).ok().and_then(|e| x.checked_pow(e)),
    })
}

/// The operator as written.
fn symbol(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        BinOp::Pow => "**",
    }
}

/// A `Math` function; like Ruby, a negative argument to a logarithm or root is a domain error.
fn call(func: Func, args: &[f64]) -> Result<Num, String> {
    let x = args.first().copied().unwrap_or(f64::NAN);
    let domain = |name: &str| format!("Math.{name}: numerical argument {x} is out of domain");
    let result = match func {
        Func::Log if x < 0.0 => return Err(domain("log")),
        Func::Log => match args.get(1) {
            Some(&base) if base < 0.0 => {
                return Err(format!("Math.log: base {base} is out of domain"));
            }
            Some(&base) => x.ln() / base.ln(),
            None => x.ln(),
        },
        Func::Log2 if x < 0.0 => return Err(domain("log2")),
        Func::Log2 => x.log2(),
        Func::Log10 if x < 0.0 => return Err(domain("log10")),
        Func::Log10 => x.log10(),
        Func::Sqrt if x < 0.0 => return Err(domain("sqrt")),
        Func::Sqrt => x.sqrt(),
        Func::Cbrt => x.cbrt(),
        Func::Exp => x.exp(),
    };
    if result.is_nan() && !args.iter().any(|a| a.is_nan()) {
        return Err(format!("{func:?}: result is not a number"));
    }
    Ok(Num::Float(result))
}

/// A postfix method; conversions of NaN or infinities to Integer fail as in Ruby (`FloatDomainError`).
fn apply(method: Method, value: Num) -> Result<Num, String> {
    let f = match value {
        Num::Int(i) => {
            return Ok(match method {
                Method::ToF => Num::Float(i as f64),
                Method::Abs => i
                    .checked_abs()
                    .map_or(Num::Float((i as f64).abs()), Num::Int),
                _ => Num::Int(i),
            });
        }
        Num::Float(f) => f,
    };
    let rounded = match method {
        Method::ToF => return Ok(Num::Float(f)),
        Method::Abs => return Ok(Num::Float(f.abs())),
        Method::ToI => f.trunc(),
        // Ruby rounds half away from zero, like f64::round.
        Method::Round => f.round(),
        Method::Ceil => f.ceil(),
        Method::Floor => f.floor(),
    };
    if !rounded.is_finite() {
        return Err(format!("FloatDomainError: {f}"));
    }
    if rounded.abs() < 9.0e18 {
        Ok(Num::Int(rounded as i64))
    } else {
        Ok(Num::Float(rounded))
    }
}
