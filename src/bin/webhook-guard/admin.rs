//! `webhook-guard admin …`: one-off steps on a data directory while no server has it open
//! (the store's lock refuses them otherwise, and says what to do instead), or on a shared
//! PostgreSQL database while servers run (they follow its changes).

use std::process::ExitCode;

use webhook_guard::admin::Admin;
use webhook_guard::store::crypt::{MasterKeyId, MasterKeys};

use crate::serve::{print_generated, Opened, Opener, StoreArgs, MASTER_KEYS_ENV};

/// `webhook-guard admin …`: one-off steps on a data directory, run while no server has it open.
#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Create an integrator and print its clientId, API secret and a first API key, once.
    CreateIntegrator {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Re-encrypt every stored secret under the first master key, in one transaction.
    Rekey {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print a new master key line (`id:base64`) to put in front of a key file.
    GenMasterKey {
        /// The new key's id, such as the date.
        #[arg(long)]
        id: String,
    },
}

pub fn run(command: AdminCommand) -> Result<ExitCode, String> {
    match command {
        AdminCommand::CreateIntegrator { store: args } => {
            let Opened {
                store, generated, ..
            } = args.open(Opener::CreateIntegrator)?;
            if let Some(path) = &generated {
                print_generated(path, &args);
            }
            let (admin, _) = store.admin(Admin::builder())?;
            let created = admin.create_integrator().map_err(|e| e.to_string())?;
            println!(
                "clientId:     {}\nclientSecret: {}\napiKey:       {}\n\
                 These are shown once; the store keeps only digests.",
                created.id,
                created.client_secret.as_str(),
                created.api_key.key.as_str()
            );
        }
        AdminCommand::Rekey { store: args } => {
            let Opened { store, sealed, .. } = args.open(Opener::Rekey)?;
            if !sealed {
                return Err(format!(
                    "rekey needs a master key: pass --master-key-file or set {MASTER_KEYS_ENV}"
                ));
            }
            let count = store.rekey()?;
            println!("re-encrypted {count} secrets under the first master key");
        }
        AdminCommand::GenMasterKey { id } => {
            let id = MasterKeyId::new(&id).map_err(|e| e.to_string())?;
            let (_, line) = MasterKeys::generate(id).map_err(|e| e.to_string())?;
            println!("{}", line.as_str());
        }
    }
    Ok(ExitCode::SUCCESS)
}
