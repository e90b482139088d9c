#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::daemon::xfrm_plan::tests::{install, v4};
use ike::sa::Mode;

#[test]
fn operations_on_one_reqid_run_in_scheduling_order_whatever_the_polling_order() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut turns = Turns::default();
        // Scheduled 1a, 2a, 1b, 1c: reqid 1's operations in that order.
        let scheduled = [(1, "1a"), (2, "2a"), (1, "1b"), (1, "1c")];
        let mut tasks: Vec<_> = scheduled
            .iter()
            .map(|&(key, name)| {
                let turn = turns.take(key);
                let log = log.clone();
                async move {
                    let done = turn.wait().await;
                    log.lock().unwrap().push(format!("{name} start"));
                    // The operation takes a while (a netlink round trip).
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    log.lock().unwrap().push(format!("{name} end"));
                    drop(done);
                }
            })
            .collect();
        // Spawned (and so first polled) in reverse order.
        tasks.reverse();
        let handles: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
        for h in handles {
            h.await.unwrap();
        }
        let log = log.lock().unwrap().clone();
        let pos = |s: &str| log.iter().position(|x| x == s).unwrap();
        assert!(pos("1a end") < pos("1b start"), "{log:?}");
        assert!(pos("1b end") < pos("1c start"), "{log:?}");
        // Another reqid does not wait for reqid 1.
        assert!(pos("2a start") < pos("1a end"), "{log:?}");
    });
}

#[test]
fn an_idle_reqid_keeps_no_turn() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut turns = Turns::default();
        let first = turns.take(1);
        let second = turns.take(1);
        // The second is not done: its turn stays for the next one.
        let done = first.wait().await;
        drop(done);
        turns.settle(1);
        assert_eq!(turns.held(), 1);
        let done = second.wait().await;
        drop(done);
        turns.settle(1);
        assert_eq!(turns.held(), 0);
        // A new operation then has no one to wait for.
        let third = turns.take(1);
        drop(third.wait().await);
        turns.settle(1);
        assert_eq!(turns.held(), 0);
    });
}

#[test]
fn expires_of_kept_inbound_sas_are_recognised_and_a_hard_one_ends_the_keeping() {
    let mut st = State::default();
    let dst: IpAddr = "192.0.2.1".parse().unwrap();
    let id = SaId {
        dst,
        spi: 0xc000_0001,
        protocol: Protocol::Esp,
        mark: None,
    };
    st.lingering.insert(id, 7);
    // Not kept: another SPI, address or protocol.
    assert!(!st.kept_expire(Protocol::Esp, 0xc000_0002, dst, false));
    assert!(!st.kept_expire(
        Protocol::Esp,
        0xc000_0001,
        "192.0.2.2".parse().unwrap(),
        true
    ));
    assert!(!st.kept_expire(Protocol::Ah, 0xc000_0001, dst, true));
    assert_eq!(st.lingering.len(), 1);
    // Soft: recognised, still kept (removed when the delay ends).
    assert!(st.kept_expire(Protocol::Esp, 0xc000_0001, dst, false));
    assert_eq!(st.lingering.get(&id), Some(&7));
    // Hard: the kernel removed it; no longer ours to remove.
    assert!(st.kept_expire(Protocol::Esp, 0xc000_0001, dst, true));
    assert!(st.lingering.is_empty());
    assert!(!st.kept_expire(Protocol::Esp, 0xc000_0001, dst, true));
}

#[test]
fn a_waiting_operation_is_small() {
    // 1,000 tunnels set up at once have about 2,000 operations waiting for
    // their turn and one of the 32 slots; the operation's own state (3.7 KB
    // of netlink and route work) is made only when it runs.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (_conn, handle) = xfrm_netlink::new_connection().unwrap();
        let k = Kernel::new(handle);
        let c = install(
            Mode::Tunnel,
            "198.51.100.1:4500",
            "203.0.113.1:30001",
            vec![v4("10.2.0.0", "10.2.0.255")],
            vec![v4("10.1.0.0", "10.1.0.255")],
        );
        let op = || KernelOp::InstallChild {
            req: ike::sa::KernelReq(1),
            child: c.clone(),
        };
        let waiting = std::mem::size_of_val(&k.schedule(op()));
        let running = std::mem::size_of_val(&k.execute(op()));
        assert!(waiting < 1024, "{waiting} bytes");
        assert!(
            running > 2 * waiting,
            "{running} bytes running, {waiting} waiting"
        );
    });
}

/// A policy's `use_time` (seconds since the epoch, 0: never) as the time
/// since, for `inactivity`.
#[test]
fn policy_use_time_becomes_the_time_since() {
    let now = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_100);
    assert_eq!(idle_since(0, now), None, "never used");
    // Used at some time in second 1_800_000_000: at most 100 s ago, at
    // least 99.
    assert_eq!(
        idle_since(1_800_000_000, now),
        Some(Duration::from_secs(99))
    );
    assert_eq!(
        idle_since(1_800_000_000, now + Duration::from_millis(500)),
        Some(Duration::from_millis(99_500))
    );
    assert_eq!(idle_since(1_800_000_099, now), Some(Duration::ZERO));
    assert_eq!(idle_since(1_800_000_100, now), Some(Duration::ZERO));
    // The clock was set back after the packet: just used.
    assert_eq!(idle_since(1_800_000_200, now), Some(Duration::ZERO));
    assert_eq!(idle_since(u64::MAX, now), None);
}
