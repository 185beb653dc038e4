//! What hostile requests cost a real `patchwell server` in memory: forty
//! gzip bombs at once (64 KiB that inflate to 64 MiB each) from a sender
//! with no credential, the same from a sender with a token, and a flood of
//! sign-ins with 100,000 distinct user names, twice. Prints the server's resident
//! memory before, at its peak and after each. Run with
//! `cargo bench -p patchwell --bench bombs`.
#![allow(clippy::print_stdout, clippy::disallowed_methods)]

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

const BOMBS: usize = 40;

fn bomb() -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&spaces).expect("compress");
    }
    gz.finish().expect("compress")
}

/// Sends `BOMBS` bombs at once; the statuses answered, counted.
async fn flood(http: &reqwest::Client, url: &str, token: Option<&str>, body: &[u8]) -> String {
    let sent = (0..BOMBS).map(|_| {
        let mut request = http
            .put(format!("{url}/api/v1/groups/bombs"))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(body.to_vec());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.map(|r| r.status().as_u16()) }
    });
    let mut counts = std::collections::BTreeMap::new();
    for answer in futures_join(sent).await {
        let key = answer.map_or_else(|e| format!("error ({e})"), |s| s.to_string());
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
        .iter()
        .map(|(k, n)| format!("{n}x {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

fn report(server: &support::Server, what: &str, before: (f64, f64), answers: &str) {
    std::thread::sleep(Duration::from_secs(2));
    let after = server.memory_mib();
    println!(
        "{what}: RSS {:.0} MiB before, peak {:.0} MiB, {:.0} MiB after; answers: {answers}",
        before.0, after.1, after.0
    );
}

fn main() {
    let server = support::Server::start("bombs-bench");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(BOMBS)
        .build()
        .expect("client");
    let body = bomb();
    println!(
        "bombs: {} bombs of {} KiB inflating to 64 MiB each; server limits: 8 MiB sent, \
         32 MiB inflated, 128 MiB of bodies at once",
        BOMBS,
        body.len() / 1024
    );
    runtime.block_on(async {
        let before = server.memory_mib();
        let answers = flood(&http, &server.url, None, &body).await;
        report(&server, "no credential", before, &answers);

        let before = server.memory_mib();
        let answers = flood(&http, &server.url, Some(&server.admin), &body).await;
        report(&server, "with a token", before, &answers);

        // Twice: the second round shows whether what the first kept grows
        // or is only held by the allocator for reuse.
        for round in ["first", "second"] {
            let before = server.memory_mib();
            let started = Instant::now();
            let mut statuses = std::collections::BTreeMap::new();
            for chunk in 0..100 {
                let sent = (0..1000).map(|i| {
                    let request = http.post(format!("{}/api/v1/session", server.url)).json(
                        &serde_json::json!({
                            "username": format!("{round}-{chunk}-{i}-{}", "x".repeat(40)),
                            "password": "not the password",
                        }),
                    );
                    async move { request.send().await.map(|r| r.status().as_u16()) }
                });
                for s in futures_join(sent).await {
                    let key = s.map_or_else(|_| "refused connection".to_owned(), |s| s.to_string());
                    *statuses.entry(key).or_insert(0) += 1;
                }
            }
            let answers = statuses
                .iter()
                .map(|(k, n)| format!("{n}x {k}"))
                .collect::<Vec<_>>()
                .join(", ");
            report(
                &server,
                &format!(
                    "100,000 sign-ins with distinct names, {round} round, in {:.1} s",
                    started.elapsed().as_secs_f64()
                ),
                before,
                &answers,
            );
        }
    });
}
