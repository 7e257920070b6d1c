//! `tributary schema-registry`: a small Confluent-compatible Schema Registry
//! (`tributary-schema-registry`) on a folder.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct SchemaRegistryCommand {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: std::net::SocketAddr,
    /// Folder the schemas are kept in (created when missing).
    #[arg(long, default_value = "schema-registry")]
    data: PathBuf,
}

impl SchemaRegistryCommand {
    pub fn execute(self) -> ExitCode {
        let Self { listen, data } = self;
        let rt = match super::server_runtime() {
            Ok(rt) => rt,
            Err(code) => return code,
        };
        rt.block_on(async move {
            let server =
                match tributary_schema_registry::RegistryServer::bind(listen, data.clone()).await {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
                };
            eprintln!(
                "schema registry listening on http://{} (schemas in {})",
                server.local_addr(),
                data.display()
            );
            tokio::select! {
                served = server.serve() => match served {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                },
                _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
            }
        })
    }
}
