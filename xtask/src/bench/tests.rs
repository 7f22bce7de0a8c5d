//! Tests of the bench's pure parts: parsing, planning, reports.
use super::load::parse_report;
use super::*;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn args_defaults_and_flags() {
    let d = Args::parse(&[]).unwrap();
    assert_eq!(d.sizes, [4096, 1 << 20, 64 << 20]);
    assert_eq!(d.concurrency, 8);
    assert!(!d.quick);
    assert_eq!(d.scenarios, Scenario::ALL);
    let a = Args::parse(&strings(&[
        "--sizes",
        "4k,64m",
        "--concurrency=4",
        "--quick",
        "--release",
        "--scenarios",
        "compare",
    ]))
    .unwrap();
    assert_eq!(a.sizes, [4096, 64 << 20]);
    assert_eq!(a.concurrency, 4);
    assert!(a.quick);
    assert_eq!(a.scenarios, [Scenario::Compare]);
    assert!(Args::parse(&strings(&["--concurrency", "0"])).is_err());
    assert!(Args::parse(&strings(&["--sizes"])).is_err());
    assert!(Args::parse(&strings(&["--bogus"])).is_err());
    assert!(Args::parse(&strings(&["--scenarios", "three-copy"])).is_err());
}

#[test]
fn sizes() {
    assert_eq!(parse_size("4k").unwrap(), 4096);
    assert_eq!(parse_size("1M").unwrap(), 1 << 20);
    assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
    assert_eq!(parse_size("100").unwrap(), 100);
    assert!(parse_size("8").is_err());
    assert!(parse_size("lots").is_err());
    assert_eq!(format_byte_size(4096), "4 KiB");
    assert_eq!(format_byte_size(64 << 20), "64 MiB");
    assert_eq!(format_byte_size(100), "100 B");
}

#[test]
fn plans() {
    assert_eq!(plan(4096, 8, false), (30_000, 8));
    assert_eq!(plan(4096, 8, true), (1000, 8));
    assert_eq!(plan(1 << 20, 8, false), (2048, 8));
    assert_eq!(plan(1 << 20, 8, true), (128, 8));
    assert_eq!(plan(64 << 20, 8, false), (32, 2));
    assert_eq!(plan(64 << 20, 8, true), (8, 2));
    // At least one request per worker.
    assert_eq!(plan(64 << 20, 40, true), (40, 2));
}

const REPORT: &str = r#"{
  "tool": "keep-bench", "url": "http://127.0.0.1:1", "scheme": "keep",
  "size": 4096, "concurrency": 2, "seed": 1, "warmup": 2, "bases": 10,
  "results": [
    {"op": "put", "ops": 10, "errors": 0, "first_error": null, "bytes": 40960,
     "seconds": 0.5, "mb_per_s": 0.08192, "ops_per_s": 20.0, "p50_ms": 1.0,
     "p99_ms": 2.0, "mean_ms": 1.1, "max_ms": 2.0, "verified": null},
    {"op": "get", "ops": 9, "errors": 1, "first_error": "GET /x: 404 Not Found",
     "bytes": 36864, "seconds": 0.25, "mb_per_s": 0.147456, "ops_per_s": 36.0,
     "p50_ms": 0.5, "p99_ms": 0.9, "mean_ms": 0.6, "max_ms": 0.9, "verified": 10}
  ]
}"#;

#[test]
fn reads_keep_bench_reports() {
    let figs = parse_report(REPORT).unwrap();
    assert_eq!(figs.len(), 2);
    assert_eq!(figs[0].op, "put");
    assert_eq!(figs[0].ops, 10);
    assert_eq!(figs[0].verified, None);
    assert_eq!(figs[1].errors, 1);
    assert_eq!(
        figs[1].first_error.as_deref(),
        Some("GET /x: 404 Not Found")
    );
    assert_eq!(figs[1].verified, Some(10));
    assert_eq!(figs[1].p99_ms, 0.9);
    assert!(parse_report("{}").is_err());
    assert!(parse_report(r#"{"tool": "keep-bench", "results": [{"op": "put"}]}"#).is_err());
}

fn figures(op: &str, mb_per_s: f64) -> OpFigures {
    OpFigures {
        op: op.to_owned(),
        ops: 100,
        errors: 0,
        first_error: None,
        bytes: 100 * 4096,
        seconds: 1.0,
        mb_per_s,
        ops_per_s: 100.0,
        p50_ms: 1.5,
        p99_ms: 3.25,
        verified: None,
        flush_seconds: None,
        durable_mb_per_s: None,
    }
}

fn sample_compare(baseline: bool) -> Compare {
    let row = |op: &str, node: f64, nginx: f64| Row {
        size: 4096,
        count: 100,
        node: figures(op, node),
        nginx: baseline.then(|| figures(op, nginx)),
        node_rss: 20 << 20,
    };
    Compare {
        rows: vec![row("put", 30.0, 40.0), row("get", 50.0, 100.0)],
        get_passes: 4,
        node_hwm: 25 << 20,
        baseline: if baseline {
            Baseline::Ran {
                version: "nginx/1.22.1".into(),
            }
        } else {
            Baseline::Missing
        },
    }
}

#[test]
fn comparison_table_and_json() {
    let c = sample_compare(true);
    let text = compare_text(&c, 2);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("size   op   node MB/s  nginx MB/s  ratio"));
    assert!(
        lines[2].contains("put") && lines[2].contains("0.75") && lines[2].contains(">=0.50 met")
    );
    assert!(
        lines[3].contains("get") && lines[3].contains("0.50") && lines[3].contains(">=0.60 MISSED")
    );
    assert!(text.contains("node peak RSS (VmHWM) over the whole comparison: 25.0 MiB"));
    assert!(text.contains("without fsync"));
    assert!(text.contains("4 KiB x100; each GET phase read every block 4 time(s)"));
    let v = compare_json(&c);
    assert_eq!(v["baseline"]["status"], "ran");
    assert_eq!(v["rows"][0]["op"], "put");
    assert_eq!(v["rows"][0]["ratio"], 0.75);
    assert_eq!(v["rows"][1]["target"], 0.6);
    assert_eq!(v["rows"][1]["nginx"]["mb_per_s"], 100.0);
    assert_eq!(v["node_peak_rss_bytes"], 25 << 20);
    assert_eq!(v["get_passes"], 4);
}

#[test]
fn durable_put_counts_the_flush() {
    let mut c = sample_compare(true);
    assert!(
        !compare_text(&c, 2).contains("PUT until durable"),
        "no flush, no section"
    );
    let put = &mut c.rows[0];
    put.node.flush_seconds = Some(0.01);
    put.node.durable_mb_per_s = Some(29.0);
    if let Some(n) = put.nginx.as_mut() {
        n.flush_seconds = Some(1.0);
        n.durable_mb_per_s = Some(20.0);
    }
    let text = compare_text(&c, 2);
    let at = text.find("PUT until durable").expect("the section");
    let row = text[at..]
        .lines()
        .find(|l| l.starts_with("4 KiB"))
        .expect("the 4 KiB row");
    for cell in ["29.0", "0.01", "20.0", "1.00", "1.45"] {
        assert!(row.contains(cell), "{cell} missing in {row}");
    }
    let v = compare_json(&c);
    assert_eq!(v["rows"][0]["durable_ratio"], 29.0 / 20.0);
    assert_eq!(v["rows"][0]["nginx"]["flush_seconds"], 1.0);
    assert!(v["rows"][1]["durable_ratio"].is_null());
}

#[test]
fn without_nginx_the_node_stands_alone() {
    let c = sample_compare(false);
    let text = compare_text(&c, 2);
    assert!(text.contains("nginx not installed: apt-get install nginx-light"));
    assert!(text.lines().nth(2).unwrap().contains(">=0.50 ?"));
    let v = compare_json(&c);
    assert_eq!(v["baseline"]["status"], "missing");
    assert!(v["rows"][0]["nginx"].is_null());
    assert!(v["rows"][0]["ratio"].is_null());
}

#[test]
fn peak_rss_and_two_copy_reports() {
    let p = PeakRss {
        count: 16,
        hwm: 300 << 20,
        sampled: 290 << 20,
        put: Some(figures("put", 400.0)),
    };
    let text = peak_rss_text(&p);
    assert!(text.contains("VmHWM 300.0 MiB"));
    assert!(text.contains("target <= 400.0 MiB: met"));
    assert_eq!(peak_rss_json(&p)["met"], true);
    let over = PeakRss {
        hwm: 500 << 20,
        ..p
    };
    assert!(peak_rss_text(&over).contains("MISSED"));
}
