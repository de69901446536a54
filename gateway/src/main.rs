//! The `manifold` command: a thin shell over the library.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context;
use clap::{Parser, Subcommand};
use manifold::{
    app,
    config::{self, ConfigError},
    demo::{self, DemoOverrides},
    telemetry,
};
use manifold_adapters::Registry;

// mimalloc: glibc malloc's free-list consolidation showed up as ~12% of the gateway's CPU per
// proxied call in profiles; mimalloc's thread-local pages avoid it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Manifold: one MCP endpoint for your company's tools.
#[derive(Debug, Parser)]
#[command(name = "manifold", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway with the embedded demo config: sandbox providers, SQLite, no credentials.
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Where the SQLite file and generated keys go.
        #[arg(long, default_value = "manifold-data")]
        data_dir: PathBuf,
        /// Tools per `tools/list` page.
        #[arg(long)]
        tools_page_size: Option<usize>,
    },
    /// Run the gateway with a config file.
    Serve {
        #[arg(long, short, env = "MANIFOLD_CONFIG")]
        config: PathBuf,
    },
    /// Validate a config file (syntax, values, references, tool names) and exit.
    Check {
        #[arg(long, short, env = "MANIFOLD_CONFIG")]
        config: PathBuf,
    },
    /// Serve one MCP client over stdin/stdout with a config file.
    Stdio {
        #[arg(long, short, env = "MANIFOLD_CONFIG")]
        config: PathBuf,
    },
    /// Print the JSON Schema of the config file.
    ConfigSchema,
    /// Work with the Cedar policies of a config (the demo's when no --config is given).
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Work with the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print a bearer access token for a user, for scripts and tests. Only for the demo config
    /// (the default) or a config with `auth.dev_tokens = true`.
    Token {
        /// The user id (`sub`); sandbox users (alice, bob, carol) get their email and groups.
        #[arg(long)]
        user: String,
        /// Extra groups.
        #[arg(long)]
        group: Vec<String>,
        /// A config file instead of the demo config.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The demo's data directory (where its keys are).
        #[arg(long, default_value = "manifold-data")]
        data_dir: PathBuf,
        /// The demo's public URL, e.g. `http://127.0.0.1:8080`.
        #[arg(long)]
        public_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Parse and validate every policy file; problems as file:line:column.
    Check {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print the Cedar schema generated from the configured tools.
    Schema {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Show the decision for one request and the policies that made it.
    Explain {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The user (`sub`).
        #[arg(long)]
        user: String,
        #[arg(long)]
        email: Option<String>,
        /// A group of the user (repeat for several).
        #[arg(long)]
        group: Vec<String>,
        /// The exposed tool name, e.g. `outlook_send_message`.
        #[arg(long)]
        tool: String,
        /// `call`, `list` or `fetch`.
        #[arg(long, default_value = "call")]
        action: String,
        /// The tool arguments as JSON.
        #[arg(long)]
        args: Option<String>,
    },
    /// Run ALLOW/DENY cases (YAML or JSON) against the policies.
    Test {
        file: PathBuf,
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// A tool catalog file to use instead of the config's tools.
        #[arg(long)]
        tools: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the keyed hash chain of an audit log file, and that it reaches its last checkpoint.
    /// The keys come from MANIFOLD_SECRET_KEY, else `<data-dir>/secret.key`; the checkpoint from
    /// the config's database, else `<data-dir>/manifold.db` when it exists.
    Verify {
        file: PathBuf,
        /// The gateway's data directory (default: the directory holding FILE).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The gateway's config, for its data directory and database.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match manifold::runtime::build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let registry = Registry::builtin();
    match cli.command {
        Command::Policy { command } => policy(command, &registry),
        Command::Audit {
            command:
                AuditCommand::Verify {
                    file,
                    data_dir,
                    config,
                },
        } => audit_verify(&file, data_dir, config.as_deref(), &registry).await,
        Command::ConfigSchema => {
            let schema = serde_json::to_string_pretty(&config::json_schema())?;
            Ok(print(manifold::admin::Report {
                ok: true,
                text: schema,
            }))
        }
        Command::Check { config } => Ok(check(&config, &registry)),
        Command::Serve { config } => {
            let source = read(&config)?;
            serve(&source, &config, &registry, None).await
        }
        Command::Demo {
            listen,
            data_dir,
            tools_page_size,
        } => {
            demo::install_policies(&data_dir).with_context(|| {
                format!("{}: cannot write the demo policies", data_dir.display())
            })?;
            let overrides = DemoOverrides {
                listen: Some(listen),
                data_dir: Some(data_dir),
                tools_page_size,
                public_url: None,
            };
            let source = demo::config_text(&overrides);
            serve(&source, Path::new("<demo>"), &registry, Some(())).await
        }
        Command::Token {
            user,
            group,
            config,
            data_dir,
            public_url,
        } => {
            let (source, path) = match &config {
                Some(path) => (read(path)?, path.clone()),
                None => {
                    let overrides = DemoOverrides {
                        data_dir: Some(data_dir),
                        public_url,
                        ..DemoOverrides::default()
                    };
                    (demo::config_text(&overrides), PathBuf::from("<demo>"))
                }
            };
            let parsed = load(&source, &path, &registry)?;
            println!("{}", token(&parsed, &user, group).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Stdio { config } => {
            let source = read(&config)?;
            let parsed = load(&source, &config, &registry)?;
            telemetry::init(&parsed.log.filter, parsed.log.json);
            let public_url = app::public_url(&parsed, parsed.server.listen)?;
            let prepared = app::prepare(&parsed, &source, &config, &registry, &public_url).await?;
            manifold::transport::stdio::serve(prepared.gateway).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `audit verify`: finds the keys and the checkpoint the gateway wrote, then verifies.
async fn audit_verify(
    file: &Path,
    data_dir: Option<PathBuf>,
    config: Option<&Path>,
    registry: &Registry,
) -> anyhow::Result<ExitCode> {
    let parsed = match config {
        Some(path) => Some(load(&read(path)?, path, registry)?),
        None => None,
    };
    let data_dir = data_dir
        .or_else(|| parsed.as_ref().map(|c| c.storage.data_dir.clone()))
        .unwrap_or_else(|| {
            file.parent()
                .filter(|dir| !dir.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf()
        });
    let variable = std::env::var("MANIFOLD_SECRET_KEY").ok();
    let keys = match manifold::keyring::Keyring::load(
        variable.as_deref(),
        &data_dir.join("secret.key"),
        false,
    ) {
        Ok(keyring) => Some(keyring.audit_keys()),
        Err(manifold::keyring::KeyringError::Missing(_)) => None,
        Err(error) => return Err(error.into()),
    };
    let url = parsed
        .as_ref()
        .and_then(|c| c.storage.url.as_ref())
        .map(manifold_adapters::Secret::expose);
    let checkpoint = if url.is_some() || data_dir.join("manifold.db").exists() {
        let storage = manifold::storage::Storage::open(url, &data_dir).await?;
        let store = manifold::audit::Checkpoints::new(storage);
        store.get(&manifold::audit::Checkpoints::key(file)).await?
    } else {
        None
    };
    Ok(print(manifold::admin::audit_verify(
        file,
        keys.as_ref(),
        checkpoint.as_ref(),
    )))
}

/// `token`: signs with the stored key, so the gateway serving this config accepts it.
async fn token(config: &config::Config, user: &str, groups: Vec<String>) -> anyhow::Result<String> {
    if !config.auth.dev_tokens {
        anyhow::bail!("`token` needs the demo config or `auth.dev_tokens = true`");
    }
    let public_url = config
        .server
        .public_url
        .as_deref()
        .context("server.public_url is not set")?;
    let storage = manifold::storage::Storage::open(
        config
            .storage
            .url
            .as_ref()
            .map(manifold_adapters::Secret::expose),
        &config.storage.data_dir,
    )
    .await?;
    let state = manifold::auth::AuthState::from_config(config, storage, public_url)?
        .context("`token` needs auth.mode = \"builtin\"")?;
    let unknown = || manifold::auth::UserInfo {
        sub: user.to_owned(),
        email: None,
        email_verified: false,
        groups: vec![],
    };
    // The sandbox IdP's users carry their demo email and groups; elsewhere only the name given.
    #[cfg(feature = "sandbox")]
    let mut info = manifold::auth::sandbox_idp::user(user).unwrap_or_else(unknown);
    #[cfg(not(feature = "sandbox"))]
    let mut info = unknown();
    info.groups.extend(groups);
    Ok(state.dev_token(&info).await?)
}

/// The config an admin command works on: the file given, else the demo's (policies in the
/// demo's data directory, installed if missing).
fn admin_config(
    path: Option<&Path>,
    registry: &Registry,
) -> anyhow::Result<(config::Config, String)> {
    let source = match path {
        Some(path) => read(path)?,
        None => {
            let data_dir = PathBuf::from("manifold-data");
            demo::install_policies(&data_dir)?;
            demo::config_text(&DemoOverrides {
                data_dir: Some(data_dir),
                ..DemoOverrides::default()
            })
        }
    };
    let shown = path.map_or_else(|| PathBuf::from("<demo>"), Path::to_path_buf);
    let config = load(&source, &shown, registry)?;
    Ok((config, source))
}

/// Prints a report; a closed pipe (`| head`) is not an error worth a panic.
fn print(report: manifold::admin::Report) -> ExitCode {
    use std::io::Write;
    if report.ok {
        let _ = writeln!(std::io::stdout(), "{}", report.text);
        ExitCode::SUCCESS
    } else {
        let _ = writeln!(std::io::stderr(), "{}", report.text);
        ExitCode::FAILURE
    }
}

fn policy(command: PolicyCommand, registry: &Registry) -> anyhow::Result<ExitCode> {
    use manifold::admin;
    let report = match command {
        PolicyCommand::Check { config } => {
            let (config, source) = admin_config(config.as_deref(), registry)?;
            admin::policy_check(&config, &source, registry)
        }
        PolicyCommand::Schema { config } => {
            let (config, source) = admin_config(config.as_deref(), registry)?;
            admin::policy_schema(&config, &source, registry)
        }
        PolicyCommand::Explain {
            config,
            user,
            email,
            group,
            tool,
            action,
            args,
        } => {
            let (config, source) = admin_config(config.as_deref(), registry)?;
            let asker = admin::Asker {
                user,
                email,
                groups: group,
            };
            admin::policy_explain(
                &config,
                &source,
                registry,
                &asker,
                &tool,
                &action,
                args.as_deref(),
            )
        }
        PolicyCommand::Test {
            file,
            config,
            tools,
        } => {
            let (config, source) = admin_config(config.as_deref(), registry)?;
            admin::policy_test(&config, &source, registry, &file, tools.as_deref())
        }
    };
    Ok(print(report))
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

fn load(source: &str, path: &Path, registry: &Registry) -> Result<config::Config, ConfigError> {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    config::load_str(source, path, registry, &vars)
}

/// `check`: every problem on stderr as `file:line:column: message`, exit 1 if any.
fn check(path: &Path, registry: &Registry) -> ExitCode {
    let source = match std::fs::read_to_string(path) {
        Ok(source) => source,
        Err(error) => {
            eprintln!("{}: cannot read: {error}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let config = match load(&source, path, registry) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    if config.policy.dir.as_deref().is_some_and(Path::exists) {
        let report = manifold::admin::policy_check(&config, &source, registry);
        if !report.ok {
            eprintln!("{}", report.text);
            return ExitCode::FAILURE;
        }
    }
    match app::build_catalog(&config, &source, registry, None) {
        Ok((catalog, _)) => {
            println!(
                "{}: ok ({} adapter instances, {} tools)",
                path.display(),
                config.adapters.len(),
                catalog.len()
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for problem in problems {
                eprintln!("{}:{problem}", path.display());
            }
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    source: &str,
    path: &Path,
    registry: &Registry,
    demo: Option<()>,
) -> anyhow::Result<ExitCode> {
    let config = load(source, path, registry)?;
    telemetry::init(&config.log.filter, config.log.json);
    let data_dir = config.storage.data_dir.clone();
    let running = app::start(config, source, path, registry).await?;
    let url = format!("http://{}/mcp", running.addr);
    tracing::info!(%url, tools = running.tools, "manifold is serving");
    if demo.is_none() {
        // One line on stdout, so scripts and supervisors can read where the gateway listens.
        println!("Manifold is serving {url}");
    } else {
        println!("Manifold demo is running.");
        println!("  MCP endpoint (Streamable HTTP): {url}");
        println!(
            "  Legacy SSE endpoint:            http://{}/sse",
            running.addr
        );
        #[cfg(feature = "sandbox")]
        if let Some(sandbox) = &running.sandbox {
            println!(
                "  Sandbox provider emulators:     http://{}/",
                sandbox.addr()
            );
        }
        println!("  Tools exposed:                  {}", running.tools);
        if let Some(operator) = running.operator_addr {
            println!("  Metrics (operator, loopback):   http://{operator}/metrics");
        }
        println!(
            "  OAuth issuer:                   http://{} (sign in as alice, bob or carol)",
            running.addr
        );
        println!();
        println!("Get a bearer token for scripts:");
        println!(
            "  manifold token --user alice --public-url http://{} --data-dir {}",
            running.addr,
            data_dir.display()
        );
        println!("Connect a client, e.g. the MCP Inspector:");
        println!("  npx @modelcontextprotocol/inspector --transport http --server-url {url}");
        println!("Press Ctrl-C to stop.");
    }
    let shutdown = running.shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        shutdown.cancel();
    });
    running.wait().await?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
