//! POSIX getopt, as the Postfix commands use it: short options clustered (`-fvq`), an option
//! argument attached (`-fuser`) or in the next word (`-f user`), `--` ends options, and the
//! first non-option word ends them too.

#[derive(Debug, PartialEq, Eq)]
pub enum Opt {
    Flag(char),
    Arg(char, String),
}

#[derive(Debug, PartialEq, Eq)]
pub enum GetoptError {
    Unknown(char),
    MissingArg(char),
}

impl std::fmt::Display for GetoptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GetoptError::Unknown(c) => write!(f, "invalid option -- '{c}'"),
            GetoptError::MissingArg(c) => write!(f, "option requires an argument -- '{c}'"),
        }
    }
}

/// Parse `args` (without the program name) against `spec` (`"c:dv"`: a letter followed by
/// `:` takes an argument). Returns the options and the remaining operands.
pub fn getopt(args: &[String], spec: &str) -> Result<(Vec<Opt>, Vec<String>), GetoptError> {
    let takes_arg = |c: char| -> Option<bool> {
        let i = spec.find(c)?;
        Some(spec[i + c.len_utf8()..].starts_with(':'))
    };
    let mut opts = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        for (pos, c) in a[1..].char_indices() {
            match takes_arg(c) {
                None => return Err(GetoptError::Unknown(c)),
                Some(false) => opts.push(Opt::Flag(c)),
                Some(true) => {
                    let rest = &a[1 + pos + c.len_utf8()..];
                    if !rest.is_empty() {
                        opts.push(Opt::Arg(c, rest.to_string()));
                    } else if i + 1 < args.len() {
                        i += 1;
                        opts.push(Opt::Arg(c, args[i].clone()));
                    } else {
                        return Err(GetoptError::MissingArg(c));
                    }
                    break;
                }
            }
        }
        i += 1;
    }
    Ok((opts, args[i..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn clusters_and_arguments() {
        let (o, rest) = getopt(&v(&["-vf", "a@b", "-cdir", "-q", "x", "y"]), "c:f:qv").unwrap();
        assert_eq!(
            o,
            vec![
                Opt::Flag('v'),
                Opt::Arg('f', "a@b".into()),
                Opt::Arg('c', "dir".into()),
                Opt::Flag('q')
            ]
        );
        assert_eq!(rest, v(&["x", "y"]));
    }

    #[test]
    fn errors_and_terminator() {
        assert_eq!(getopt(&v(&["-z"]), "a"), Err(GetoptError::Unknown('z')));
        assert_eq!(getopt(&v(&["-f"]), "f:"), Err(GetoptError::MissingArg('f')));
        let (o, rest) = getopt(&v(&["--", "-x"]), "x").unwrap();
        assert!(o.is_empty());
        assert_eq!(rest, v(&["-x"]));
    }
}
