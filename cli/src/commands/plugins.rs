//! `tributary plugins`: the connectors, built in and from the plugin
//! folder, and why any library there was refused.

use std::process::ExitCode;

use tributary_runtime::registry::{Origin, Registry};

#[derive(clap::Args)]
pub struct PluginsCommand {}

impl PluginsCommand {
    pub fn execute(self, registry: Registry) -> ExitCode {
        let entries = registry.entries();
        for e in entries.iter().filter(|e| e.origin == Origin::BuiltIn) {
            println!("{:<16} {:<7} built in", e.name, e.maker.role());
        }
        let mut loaded = 0;
        for e in entries {
            if let Origin::Plugin { path, description } = &e.origin {
                loaded += 1;
                println!(
                    "{:<16} {:<7} plugin {} — {}",
                    e.name,
                    e.maker.role(),
                    path.display(),
                    description
                );
            }
        }
        let refused = registry.refused();
        match registry.plugin_dir() {
            Some(dir) => eprintln!(
                "plugin folder: {} ({} loaded, {} refused)",
                dir.display(),
                loaded,
                refused.len()
            ),
            None => eprintln!("no plugin folder"),
        }
        for (path, reason) in refused {
            eprintln!("refused {}: {reason}", path.display());
        }
        if refused.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        }
    }
}
