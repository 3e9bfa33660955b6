//! Psych's Ruby-side choices for scalars: the style `visit_String` asks for (from what
//! `ScalarScanner#tokenize` would read back) and `Float#to_s`.

/// How a scalar is written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Style {
    /// As is.
    Plain,
    /// Between single quotes.
    Single,
    /// Between double quotes, with escapes.
    Double,
    /// A literal block (`|`).
    Literal,
}

/// Psych's `visit_String`: the style it asks libyaml for.
pub(super) fn string_style(s: &str) -> Style {
    let literal = s
        .char_indices()
        .any(|(i, c)| c == '\n' && !(i + 1 == s.len() || &s[i + 1..] == "\n"));
    if literal {
        Style::Literal
    } else if s == "<<" {
        Style::Single
    } else if s == "y" || s == "n" || starts_non_word_without_quote(s) {
        Style::Double
    } else if !reads_back_as_string(s) || octal_like_with_8_or_9(s) {
        Style::Single
    } else {
        Style::Plain
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn line_starts(s: &str) -> impl Iterator<Item = usize> + '_ {
    std::iter::once(0).chain(s.match_indices('\n').map(|(i, _)| i + 1))
}

/// Ruby's `s =~ /^[^[:word:]][^"]*$/` (`^` and `$` match at every line).
fn starts_non_word_without_quote(s: &str) -> bool {
    line_starts(s).any(|p| {
        let mut rest = s[p..].chars();
        match rest.next() {
            Some(c) if !is_word(c) => {
                let tail: String = rest.take_while(|&c| c != '"').collect();
                tail.len() == s.len() - p - c.len_utf8() || tail.contains('\n')
            }
            _ => false,
        }
    })
}

/// `/\A0[0-7]*[89]/`.
fn octal_like_with_8_or_9(s: &str) -> bool {
    s.strip_prefix('0').is_some_and(|r| {
        r.trim_start_matches(|c: char| ('0'..='7').contains(&c))
            .starts_with(['8', '9'])
    })
}

/// Whether Psych's `ScalarScanner#tokenize` gives the String back (not nil, a boolean, a number, a
/// Symbol, a Time or a Date).
fn reads_back_as_string(s: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    let in_class = |c: char| {
        c.is_alphabetic() || c.is_ascii_whitespace() || "_!@#$%^&*(){}<>|/\\~;=".contains(c)
    };
    let stringy = line_starts(s).any(|p| {
        let mut it = s[p..].chars();
        let (a, b) = (it.next(), it.next());
        a.is_some_and(in_class)
            || (a.is_some_and(|c| !c.is_ascii_digit() && !".:-".contains(c))
                && b.is_some_and(in_class))
    });
    if stringy || s.contains('\n') {
        if s.chars().count() > 5 {
            return true;
        }
        let lines: Vec<String> = s.split('\n').map(str::to_ascii_lowercase).collect();
        let starts_other = line_starts(s).any(|p| {
            s[p..]
                .chars()
                .next()
                .is_some_and(|c| !"ytonfYTONF~".contains(c))
        });
        if starts_other {
            return true;
        }
        let has = |words: &[&str]| lines.iter().any(|l| words.contains(&l.as_str()));
        return !(s == "~" || has(&["null", "yes", "true", "on", "no", "false", "off"]));
    }
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let digits = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '_');
    let date_like = {
        let b = s.strip_prefix('-').unwrap_or(s);
        b.len() >= 8
            && b[..4].chars().all(|c| c.is_ascii_digit())
            && b[4..].starts_with('-')
            && b[5..].chars().next().is_some_and(|c| c.is_ascii_digit())
    };
    let lower = s.to_ascii_lowercase();
    let special_float = [".inf", "+.inf", "-.inf", ".nan"].contains(&lower.as_str());
    let symbol = s.starts_with(':') && s.len() > 1;
    let sexagesimal = {
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        let mut parts = int.split(':');
        let head = parts.next().unwrap_or("");
        let rest: Vec<&str> = parts.collect();
        head.starts_with(|c: char| c.is_ascii_digit())
            && digits(head)
            && (1..=2).contains(&rest.len())
            && rest
                .iter()
                .all(|p| (1..=2).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit()))
            && rest.iter().all(|p| p.len() == 1 || p.as_bytes()[0] <= b'5')
            && frac.chars().all(|c| c.is_ascii_digit() || c == '_')
    };
    let float = {
        let (mantissa, exp) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let exp_ok = exp.is_none_or(|e| {
            e.strip_prefix(['-', '+'])
                .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
        });
        mantissa.split_once('.').is_some_and(|(i, f)| {
            (i.is_empty()
                || (i.starts_with(|c: char| c.is_ascii_digit())
                    && i.chars()
                        .all(|c| c.is_ascii_digit() || c == '_' || c == ',')))
                && f.chars().all(|c| c.is_ascii_digit())
        }) && exp_ok
            && body != "."
    };
    let integer = {
        let radix = |p: &str, ok: fn(char) -> bool| {
            body.strip_prefix(p)
                .is_some_and(|d| !d.is_empty() && d.chars().all(|c| ok(c) || c == '_' || c == ','))
        };
        radix("0b", |c| c == '0' || c == '1')
            || radix("0x", |c| c.is_ascii_hexdigit())
            || radix("0", |c| ('0'..='7').contains(&c))
            || body == "0"
            || (body.starts_with(|c: char| ('1'..='9').contains(&c))
                && !body.contains(",,")
                && !body.ends_with([',', '_'])
                && body
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '_' || c == ','))
    };
    !(date_like || special_float || symbol || sexagesimal || float || integer)
}

/// Ruby's `Float#to_s`: shortest round-trip digits, exponent form below 1e-4 and from 1e15.
pub(super) fn float_to_s(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if (-4..15).contains(&exp) {
        let point = exp + 1;
        let text = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if (point as usize) >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            let (a, b) = digits.split_at(point as usize);
            format!("{a}.{b}")
        };
        format!("{sign}{text}")
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { "0" } else { rest };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}.{rest}e{esign}{:02}", exp.abs())
    }
}
