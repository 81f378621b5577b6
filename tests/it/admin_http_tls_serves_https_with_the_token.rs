//! With `--admin-tls-cert/--admin-tls-key` the admin endpoint speaks HTTPS: curl verifying
//! the test CA gets 401 without the bearer token and 200 with it; plain HTTP gets no answer.

use crate::common::{free_port_range, Broker, BrokerOptions};
use crate::tls_support::Pki;

use std::process::Command;

/// curl's HTTP status for `url` (000 when no HTTP answer came).
fn curl_status(args: &[&str], url: &str) -> String {
    let output = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn admin_tls_serves_https_with_the_token() {
    let pki = Pki::new();
    let port = free_port_range(1);
    let _broker = Broker::start_with(BrokerOptions {
        extra_args: vec![
            "--admin-listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--admin-token".to_owned(),
            "tls-admin-token".to_owned(),
            "--admin-tls-cert".to_owned(),
            pki.path("server.pem").display().to_string(),
            "--admin-tls-key".to_owned(),
            pki.path("server.key").display().to_string(),
        ],
        ..BrokerOptions::default()
    });
    let ca = pki.ca().display().to_string();
    let https = format!("https://127.0.0.1:{port}/ready");
    assert_eq!(curl_status(&["--cacert", &ca], &https), "401");
    let auth = "Authorization: Bearer tls-admin-token";
    assert_eq!(curl_status(&["--cacert", &ca, "-H", auth], &https), "200");
    let http = format!("http://127.0.0.1:{port}/ready");
    assert_eq!(curl_status(&["-H", auth], &http), "000");
}
