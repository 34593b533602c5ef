//! The cluster's `redis-server`: answers once started, not while paused,
//! again when resumed; a kill and a restart bring it back on the same
//! port, empty; dropping it ends the process (a paused one too).

use std::time::Duration;
use tether_cluster::redis::RedisServer;

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim().to_owned()))
        .is_some_and(|r| !r.starts_with('Z') && !r.starts_with('X'))
}

async fn gone(pid: i32) -> bool {
    for _ in 0..100 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn paused_killed_restarted_and_dropped() {
    let dir = tempdir();
    let mut redis = RedisServer::start(&dir).await.expect("redis-server starts");
    assert!(redis.answers().await);
    assert!(redis.url().ends_with(&format!(":{}", redis.port())));
    let pid = redis.pid().expect("redis-server runs") as i32;

    redis.pause();
    assert!(!redis.answers().await, "a paused server answers nothing");
    redis.resume();
    assert!(redis.answers().await);

    let port = redis.port();
    redis.kill().await;
    assert!(!redis.is_running());
    assert!(gone(pid).await, "killed");
    assert!(!redis.answers().await);
    redis.restart().await.expect("starts again");
    assert_eq!(redis.port(), port, "on the same port");
    assert!(redis.answers().await);

    let pid = redis.pid().expect("redis-server runs again") as i32;
    redis.pause();
    drop(redis);
    assert!(gone(pid).await, "dropping a paused server ends it");
    let _ = std::fs::remove_dir_all(dir);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tether-redis-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}
