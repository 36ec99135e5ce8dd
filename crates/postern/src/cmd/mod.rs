//! One module per command, named as Postfix names them.
pub mod postcat;
pub mod postfix;
pub mod postqueue;
pub mod postsuper;
pub mod sendmail;
pub mod showq;
