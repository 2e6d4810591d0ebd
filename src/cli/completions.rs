//! `dravo completions SHELL` and `dravo man`: what clap knows of the command line, for shells
//! and `man`.

use clap::CommandFactory;

use super::Cli;
use super::output::write_stdout;
use crate::error::{Error, Result};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print a shell completion script: `dravo completions bash > /etc/bash_completion.d/dravo`
    Completions {
        /// bash, zsh, fish, powershell or elvish
        #[arg(value_name = "SHELL", ignore_case = true)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `dravo man > /usr/local/share/man/man1/dravo.1`
    Man,
}

pub fn run(cmd: &Command) -> Result<()> {
    let mut out = Vec::new();
    match *cmd {
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "dravo", &mut out);
        }
        Command::Man => clap_mangen::Man::new(Cli::command())
            .render(&mut out)
            .map_err(|e| Error::Internal(format!("cannot render the man page: {e}")))?,
    }
    write_stdout(&out)
}
