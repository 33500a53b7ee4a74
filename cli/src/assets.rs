//! `kapsel generate-assets DIR` (hidden): man pages and shell completions,
//! generated from the same clap definitions as the parser, so they cannot
//! drift from the options the binary takes.
//!
//! A subcommand of the binary rather than a build script: it adds nothing
//! to every build, needs no `make`, and an installed `kapsel` can always
//! regenerate the pages of its own version (README, "Install").
//!
//! Layout under DIR: `man/man1/kapsel.1` and one `kapsel-COMMAND.1` per
//! command (`kapsel-ledger-list.1` for nested ones); `completions/kapsel.bash`,
//! `completions/_kapsel` (zsh) and `completions/kapsel.fish`.

use std::path::Path;

use clap_complete::Shell;

use crate::error::CliError;

pub fn generate(mut cmd: clap::Command, dir: &Path) -> Result<(), CliError> {
    let man = dir.join("man").join("man1");
    let completions = dir.join("completions");
    for d in [&man, &completions] {
        std::fs::create_dir_all(d)
            .map_err(|e| CliError::io(format!("cannot create {}", d.display()), e))?;
    }
    clap_mangen::generate_to(cmd.clone(), &man)
        .map_err(|e| CliError::io(format!("cannot write man pages in {}", man.display()), e))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, "kapsel", &completions).map_err(|e| {
            CliError::io(
                format!(
                    "cannot write {shell} completions in {}",
                    completions.display()
                ),
                e,
            )
        })?;
    }
    errln!(
        "kapsel: wrote man pages to {} and completions to {}",
        man.display(),
        completions.display()
    );
    Ok(())
}
