//! A PostgreSQL database of its own for each test: created with a random name on the server at
//! 127.0.0.1:5432 (user `postgres`, trust; `WG_TEST_POSTGRES` overrides the connection
//! settings, without a database name) and dropped when the guard is (also on panic).

#![allow(dead_code)]

use tokio_postgres::{NoTls, Row};

/// Connection settings of the test server, without a database.
pub fn server() -> String {
    std::env::var("WG_TEST_POSTGRES")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres".into())
}

/// Runs `sql` (one statement, no parameters) on database `db`, on a thread and runtime of its
/// own so it works from anywhere (a test's runtime included); the rows it returned.
pub fn run(db: &str, sql: &str) -> Result<Vec<Row>, tokio_postgres::Error> {
    let conninfo = format!("{} dbname={db}", server());
    let sql = sql.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (client, connection) = tokio_postgres::connect(&conninfo, NoTls).await?;
            let driver = tokio::spawn(connection);
            let rows = if sql.trim_start().to_ascii_uppercase().starts_with("SELECT") {
                client.query(&sql, &[]).await
            } else {
                client.batch_execute(&sql).await.map(|()| Vec::new())
            };
            drop(client);
            let _ = driver.await;
            rows
        })
    })
    .join()
    .unwrap()
}

/// A database that exists for as long as the guard.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub fn new() -> Self {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).unwrap();
        let name = format!("wg_test_{:016x}", u64::from_le_bytes(b));
        run("postgres", &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("PostgreSQL at {} is required: {e}", server()));
        Self { name }
    }

    /// A URL for `PostgresStore::connect`.
    pub fn url(&self) -> String {
        format!("{} dbname={}", server(), self.name)
    }

    /// Runs `sql` on this database.
    pub fn run(&self, sql: &str) -> Vec<Row> {
        run(&self.name, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs `sql` as the server's administrator (on database `postgres`).
    pub fn admin(&self, sql: &str) -> Vec<Row> {
        run("postgres", sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = run(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}
