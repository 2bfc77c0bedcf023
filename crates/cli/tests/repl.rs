use std::time::Duration;

use rexpect::session::{PtySession, spawn_command};

use crate::common::*;

fn shell(store: &std::path::Path, home: &std::path::Path) -> PtySession {
    let mut c = bin();
    c.arg("--store")
        .arg(store)
        .arg("sql")
        .env("HOME", home)
        .env("XDG_DATA_HOME", home)
        .env("TERM", "xterm");
    spawn_command(c, Some(30_000)).expect("spawn the REPL in a pseudo-terminal")
}

#[test]
fn the_repl_as_a_user_drives_it() {
    let (dir, store, _log) = generated_store(30_000, 1, 2);
    let mut p = shell(&store, dir.path());
    p.exp_string("auditlake> ").unwrap();

    // A multi-line statement: the shell waits for the ';'.
    p.send_line("SELECT count(*) AS n").unwrap();
    p.send_line("FROM audit_events").unwrap();
    p.send_line("WHERE verb = 'get';").unwrap();
    p.exp_string("(1 row)").unwrap();

    // \d lists tables and views; \d NAME their columns.
    p.send_line("\\d").unwrap();
    p.exp_string("audit_events").unwrap();
    p.exp_string("secret_access").unwrap();
    p.send_line("\\d pod_exec").unwrap();
    p.exp_string("request_uri").unwrap();

    // Tab completion of a column name.
    p.send("SELECT count(*) FROM audit_events WHERE impersonated_user_na")
        .unwrap();
    p.send("\t").unwrap();
    p.send_line(" IS NOT NULL;").unwrap();
    p.exp_string("(1 row)").unwrap();
    // ... and of a view's name (views are planned lazily; their names are there from the start).
    p.send("SELECT count(*) AS views_n FROM pod_exe").unwrap();
    p.send("\t").unwrap();
    p.send_line(";").unwrap();
    p.exp_string("views_n").unwrap();
    p.exp_string("(1 row)").unwrap();

    // A syntax error, then a good query: the shell goes on.
    p.send_line("SELEC oops;").unwrap();
    p.exp_string("error").unwrap();
    p.send_line("SELECT 40 + 2 AS answer;").unwrap();
    p.exp_string("42").unwrap();

    // Ctrl-C cancels a long query, not the shell.
    p.send_line(
        "SELECT count(*) FROM audit_events a, audit_events b, audit_events c WHERE a.request_uri < b.request_uri AND b.user_agent < c.user_agent;",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    p.send_control('c').unwrap();
    p.exp_string("query cancelled").unwrap();
    p.send_line("SELECT 'still here' AS status;").unwrap();
    // The result row, not the echo of the typed line: the next line is typed once the shell is back.
    p.exp_string("| still here |").unwrap();
    p.exp_string("auditlake> ").unwrap();

    p.send_line("\\timing").unwrap();
    p.exp_string("timing is on").unwrap();
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
    let history = std::fs::read_to_string(dir.path().join("auditlake/history")).unwrap();
    assert!(history.contains("SELECT 40 + 2"), "{history}");
}
