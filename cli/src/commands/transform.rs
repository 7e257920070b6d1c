//! `tributary transform new|bindings|component|inspect|test`: the transform
//! toolchain (`tributary-toolchain`).

use std::path::PathBuf;
use std::process::ExitCode;

use tributary_toolchain::{bindings, inspect, new, test};
use tributary_wasm_host::TransformEngine;

#[derive(clap::Subcommand)]
pub enum TransformCommand {
    /// Write a buildable transform to start from, in ./<name>.
    New {
        name: String,
        /// `rust`, `python`, `js` or `c`.
        #[arg(long)]
        lang: String,
    },
    /// Write the bindings of this tributary's WIT world for a language
    /// without its own component tooling (`c`: transform.h, transform.c and
    /// transform_component_type.o, to compile and link with the transform).
    Bindings {
        /// `c`.
        lang: String,
        /// The folder to write them to (created when missing).
        #[arg(default_value = "gen")]
        dir: PathBuf,
    },
    /// Wrap a core WebAssembly module built by clang (`--target=wasm32-wasi
    /// -mexec-model=reactor`, linked with the bindings) into a transform
    /// component, adapting its WASI imports; then check it as `inspect` does.
    Component {
        /// The core module.
        core: PathBuf,
        /// The component to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Print the world a module implements and its WIT version; refuse one
    /// this tributary cannot run, saying which version it needs.
    Inspect {
        /// A `.wasm` component, or `builtin:<name>`.
        module: String,
    },
    /// Run a module on JSON-lines records and print what comes out (stdout),
    /// and what it dropped, rejected, kept in state and cost (stderr).
    Test {
        /// A `.wasm` component, or `builtin:<name>`.
        module: String,
        /// JSON lines, one record each; columns are inferred from them (RFC
        /// 3339 text is a timestamp).
        #[arg(long)]
        input: PathBuf,
        /// A config entry for the transform (repeatable); VALUE is JSON when it
        /// parses as JSON, else text.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// Records per call.
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
    },
}

impl TransformCommand {
    pub fn execute(self) -> ExitCode {
        let engine = match TransformEngine::new(None) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let wrote = |files: Vec<PathBuf>| -> String {
            files
                .iter()
                .map(|f| format!("wrote {}\n", f.display()))
                .collect()
        };
        let answer = match self {
            Self::New { name, lang } => {
                new::scaffold(&name, &lang, std::path::Path::new(".")).map(|files| {
                    wrote(files) + &format!("next: see {name}/README.md to build and try it\n")
                })
            }
            Self::Bindings { lang, dir } => bindings::write_bindings(&lang, &dir).map(wrote),
            Self::Component { core, output } => inspect::component(&engine, &core, &output),
            Self::Inspect { module } => inspect::inspect(&engine, &module),
            Self::Test {
                module,
                input,
                config,
                batch_size,
            } => {
                let mut map = serde_json::Map::new();
                for entry in config {
                    let Some((k, v)) = entry.split_once('=') else {
                        eprintln!("error: --config {entry}: write KEY=VALUE");
                        return ExitCode::from(2);
                    };
                    let value = serde_json::from_str(v)
                        .unwrap_or_else(|_| serde_json::Value::String(v.to_string()));
                    map.insert(k.to_string(), value);
                }
                // A failed run is exit 1, not 2: the module and input were usable.
                return match test::test(&engine, &module, &input, map, batch_size) {
                    Ok(report) => {
                        for row in report.output {
                            println!("{row}");
                        }
                        eprint!("{}", report.summary);
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                };
            }
        };
        match answer {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        }
    }
}
