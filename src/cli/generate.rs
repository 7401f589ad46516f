//! `vipmux completions SHELL` and `vipmux man`: the shell completions and the manual page, both
//! generated from the command-line definition itself so they never drift from it (the Debian
//! package ships their output).

use std::io::Write;
use std::process::ExitCode;

use super::CliResult;

/// Arguments of `vipmux completions`.
#[derive(clap::Args, Debug)]
pub struct CompletionArgs {
    /// Shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Write `cmd`'s completion script for `args.shell` to stdout.
pub fn completions(args: CompletionArgs, mut cmd: clap::Command) -> CliResult {
    let name = cmd.get_name().to_string();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, name, &mut out);
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Write `cmd`'s manual page (roff, section 1) to stdout, every subcommand included.
pub fn man(cmd: clap::Command) -> CliResult {
    let mut page = Vec::new();
    render_man(cmd, &mut page)?;
    std::io::stdout().lock().write_all(&page)?;
    Ok(ExitCode::SUCCESS)
}

/// The manual page: the top-level page, then one `SUBCOMMAND` section per subcommand with its
/// synopsis and options.
fn render_man(cmd: clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut cmd = cmd;
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_subcommands_section(out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{} {}", cmd.get_name(), sub.get_name());
        writeln!(out, ".SH \"{}\"", name.to_uppercase())?;
        // After build() the subcommand's bin name is "vipmux SUB", which the synopsis shows.
        let sub_man = clap_mangen::Man::new(sub.clone());
        sub_man.render_synopsis_section(out)?;
        sub_man.render_description_section(out)?;
        sub_man.render_options_section(out)?;
    }
    man.render_version_section(out)?;
    Ok(())
}
