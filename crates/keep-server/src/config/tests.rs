use super::*;

#[test]
fn defaults_are_the_embedded_node() {
    let c = Config::embedded_default();
    assert_eq!(c.listen.to_string(), "127.0.0.1:25107");
    assert_eq!(c.volumes.len(), 1);
    assert_eq!(
        c.volumes[0].location,
        VolumeLocation::Directory("./keep-data".into())
    );
    assert_eq!(c.signing_ttl, Duration::from_secs(336 * 3600));
    assert!(c.signing_key.is_none() && c.system_root_token.is_none());
}

#[test]
fn errors_name_field_and_file() {
    let cfg = FileConfig {
        blob_signing_ttl: Some("soon".into()),
        ..Default::default()
    };
    let e = cfg.validate("/etc/keep.toml").unwrap_err().to_string();
    assert!(e.starts_with("/etc/keep.toml: blob_signing_ttl:"), "{e}");
    let cfg = FileConfig {
        trash_lifetime: Some("0s".into()),
        ..Default::default()
    };
    assert!(
        cfg.validate("f")
            .unwrap_err()
            .to_string()
            .contains("unsafe_delete")
    );
    let cfg = FileConfig {
        uuid: Some("nope".into()),
        ..Default::default()
    };
    assert!(
        cfg.validate("f")
            .unwrap_err()
            .to_string()
            .starts_with("f: uuid:")
    );
    let cfg = FileConfig {
        blob_signing_key_file: Some("/nonexistent/key".into()),
        ..Default::default()
    };
    let e = cfg.validate("f").unwrap_err().to_string();
    assert!(
        e.contains("blob_signing_key_file") && e.contains("/nonexistent/key"),
        "{e}"
    );
}

#[test]
fn toml_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:1\"\nbogus = 3\n").unwrap();
    let e = FileConfig::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("k.toml") && e.contains("line 2") && e.contains("bogus"),
        "{e}"
    );
}

#[test]
fn volume_tables_and_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "s3cret\n").unwrap();
    let text = format!(
        "blob_signing_key_file = {key:?}\nvolumes = [\"/a\", {{ path = \"/b\", read_only = true, min_free = \"1GiB\", storage_classes = [\"archive\"] }}]\n"
    );
    let path = dir.path().join("k.toml");
    std::fs::write(&path, text).unwrap();
    let c = FileConfig::load(&path).unwrap().validate("k.toml").unwrap();
    assert!(c.signing_key.is_some());
    assert!(c.volumes[0].allow_write && !c.volumes[1].allow_write && !c.volumes[1].allow_trash);
    assert_eq!(c.volumes[1].min_free_bytes, 1 << 30);
    assert_eq!(c.volumes[1].storage_classes, vec!["archive".to_owned()]);
    assert!(
        !format!("{c:?}").contains("s3cret"),
        "secrets stay out of Debug"
    );
}

#[test]
fn remote_heartbeat_and_pull_settings_come_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.toml");
    std::fs::write(
        &path,
        "pull_idle_timeout = \"7s\"\nworker_shutdown_deadline = \"9s\"\n\
         [remote]\nconnect_timeout = \"250ms\"\n\
         [heartbeat]\nperiod = \"500ms\"\nfailures_to_down = 3\n\
         [introducer_client]\nretry_max = \"3s\"\n",
    )
    .unwrap();
    let c = FileConfig::load(&path).unwrap().validate("k.toml").unwrap();
    assert_eq!(c.remote.connect_timeout, Duration::from_millis(250));
    let defaults = keep_remote::RemoteConfig::default();
    assert_eq!(c.remote.request_timeout, defaults.request_timeout);
    assert_eq!(c.heartbeat.period, Duration::from_millis(500));
    assert_eq!(c.heartbeat.failures_to_down, 3);
    assert_eq!(
        c.pull_timeouts.read_first_byte_timeout,
        Duration::from_secs(7)
    );
    assert_eq!(
        c.pull_timeouts.connect_timeout,
        defaults::PULL_CONNECT_TIMEOUT
    );
    assert_eq!(c.worker_shutdown_deadline, Duration::from_secs(9));
    assert_eq!(c.introducer_client.retry_max, Duration::from_secs(3));
    assert_eq!(
        c.introducer_client.poll_wait,
        keep_introducer::client::DEFAULT_POLL_WAIT
    );
    assert_eq!(c.drain_timeout, defaults::DRAIN_TIMEOUT);
    std::fs::write(&path, "[heartbeat]\nfailures_to_down = 0\n").unwrap();
    let e = FileConfig::load(&path)
        .unwrap()
        .validate("k.toml")
        .unwrap_err();
    assert!(e.to_string().contains("heartbeat.failures_to_down"), "{e}");
    std::fs::write(&path, "[remote]\nbogus = 1\n").unwrap();
    assert!(FileConfig::load(&path).is_err(), "unknown keys are refused");
}

#[test]
fn anonymous_replicas_default_to_the_replication_and_are_at_least_one() {
    let cfg = FileConfig {
        replication: Some(3),
        ..Default::default()
    };
    assert_eq!(cfg.validate("f").unwrap().max_anonymous_replicas, 3);
    let cfg = FileConfig {
        max_anonymous_replicas: Some(0),
        ..Default::default()
    };
    let e = cfg.validate("f").unwrap_err().to_string();
    assert!(e.starts_with("f: max_anonymous_replicas:"), "{e}");
}
