//! The short version of `backend-soak` in every test run: terminals running seed-1 flows through the real portal and server, a server SIGKILL and restart in the middle, hostile clients beside them; no grant lost, no R granted twice, every abuse answered as documented.

use e2e_tests::workspace_bin;
use std::process::Command;

fn figure(out: &str, prefix: &str, after: &str) -> u64 {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.split(after).nth(1))
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `{after}` figure on the `{prefix}` line:\n{out}"))
}

/// Runs `cmd` (backend-soak with its campaign's flags) on this workspace's server and
/// portal; its report, once it has exited 0 with no violation.
fn soak_without_violations(mut cmd: Command) -> String {
    let out = cmd
        .arg("--server-bin")
        .arg(workspace_bin("server").unwrap())
        .arg("--portal-bin")
        .arg(workspace_bin("portal").unwrap())
        .output()
        .expect("start backend-soak");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "backend-soak failed:\n{text}");
    assert!(text.contains("\nviolations 0"), "{text}");
    text
}

/// Issue 14's campaign across instances, short: two `server` processes on one PostgreSQL
/// database behind the real portal, one instance SIGKILLed mid-run and then both at once;
/// every received grant is in the database, no R is granted twice, the last connections
/// work.
#[test]
fn two_instances_on_postgresql_lose_no_grant_when_one_and_then_both_are_killed() {
    let test = "two_instances_on_postgresql_lose_no_grant_when_one_and_then_both_are_killed";
    let Some(pg) = crate::pg::cluster(test) else {
        return;
    };
    let _alone = e2e_tests::exclusive();
    let url = pg.new_database();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_backend-soak"));
    cmd.args(["--terminals", "4", "--flows", "30", "--kills", "1"])
        .args(["--instances", "2", "--replay-every", "4"])
        .args(["--request-timeout-ms", "2000"])
        .env("BACKEND_SOAK_DATABASE", url);
    let text = soak_without_violations(cmd);
    assert!(
        text.contains("2 server instance(s) on PostgreSQL"),
        "{text}"
    );
    assert_eq!(figure(&text, "load:", "load: "), 120, "{text}");
    assert!(text.contains("kill 1: SIGKILL of instance 0"), "{text}");
    assert!(text.contains("kill 2: SIGKILL of every instance"), "{text}");
    assert_eq!(
        figure(&text, "grants:", "missing after the final SIGKILL "),
        0
    );
    assert_eq!(figure(&text, "grants:", "usable afterwards "), 4, "{text}");
    assert_eq!(figure(&text, "replays:", "second grants "), 0);
}

#[test]
fn a_server_sigkill_under_load_loses_no_grant_and_grants_no_replay() {
    // Its 500 ms request timeout is about the machine's load: nothing else runs beside it.
    let _alone = e2e_tests::exclusive();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_backend-soak"));
    cmd.args(["--terminals", "4", "--flows", "40", "--kills", "2"])
        .args(["--replay-every", "4", "--request-timeout-ms", "500"]);
    let text = soak_without_violations(cmd);
    assert_eq!(figure(&text, "load:", "load: "), 160, "{text}");
    assert!(text.contains("kill 1: SIGKILL") && text.contains("kill 2: SIGKILL"));
    // Every grant received is in the database after the final SIGKILL, and usable.
    assert_eq!(
        figure(&text, "grants:", "missing after the final SIGKILL "),
        0
    );
    assert_eq!(figure(&text, "grants:", "usable afterwards "), 4, "{text}");
    // Every R was replayed and refused; mid-run replays happened too.
    assert_eq!(figure(&text, "replays:", "second grants "), 0);
    // (A flow whose registration answer was lost in a kill ends before its replay.)
    let lost = figure(&text, "kills:", "registration answers lost in a kill ");
    assert!(
        figure(&text, "replays:", "mid-run ") + lost >= 4 * 10,
        "{text}"
    );
    // The hostile clients were answered at the server and at the portal.
    for kind in [
        "oversized -> 413 ",
        "malformed -> 400 ",
        "slow body -> 408 ",
        "slow headers -> cut ",
    ] {
        assert!(figure(&text, "hostile:", kind) >= 2, "{kind}: {text}");
    }
}
