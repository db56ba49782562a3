use super::*;
use crate::design::{horizon_design, isoflop_design, wsd_branches};

#[test]
fn the_time_estimate_counts_each_runs_spent_flops_and_steps() {
    let d = RunDefaults::default();
    let (mut runs, _) = isoflop_design(&[1e12], 1, 4.0, 256, &d);
    let mut branch = runs[0].clone();
    branch.id = "branch".into();
    branch.at_tokens = Some(branch.tokens / 4);
    runs.push(branch);
    let s = Sweep {
        name: "t".into(),
        results: "runs".into(),
        data: None,
        vocab: 256,
        defaults: d.clone(),
        command: None,
        slurm: Default::default(),
        runs,
    };
    // By hand: the whole run, then the branch's last three quarters only.
    let r = &s.runs[0];
    let n = r.params as f64;
    let steps = |tokens: u64| tokens as f64 / (d.batch * d.context) as f64;
    let whole = 6.0 * n * r.tokens as f64 / 5.7e10 + 1.6e-3 * steps(r.tokens);
    let left = r.tokens - r.tokens / 4;
    let branch = 6.0 * n * left as f64 / 5.7e10 + 1.6e-3 * steps(left);
    for cores in [1, 2] {
        let want = (whole + branch) / cores as f64;
        assert!((s.estimated_secs(cores) / want - 1.0).abs() < 1e-12);
    }
}

#[test]
fn toml_round_trips_and_bad_files_are_named() {
    let d = RunDefaults::default();
    let (runs, _) = isoflop_design(&[1e12], 3, 4.0, 256, &d);
    let s = Sweep {
        name: "t".into(),
        results: "runs".into(),
        data: None,
        vocab: 256,
        defaults: d,
        command: None,
        slurm: Default::default(),
        runs,
    };
    let dir = std::env::temp_dir().join(format!("isoflop-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("sweep.toml");
    std::fs::write(&p, s.to_toml(2)).unwrap();
    assert_eq!(Sweep::read(&p).unwrap(), s);
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replacen("heads = ", "heads = 7 #", 1)).unwrap();
    let e = Sweep::read(&p).unwrap_err().to_string();
    assert!(
        e.contains("sweep.toml") && e.contains("heads do not divide"),
        "{e}"
    );
    std::fs::write(&p, "name = ").unwrap();
    assert!(Sweep::read(&p)
        .unwrap_err()
        .to_string()
        .contains("sweep.toml"));
}

#[test]
fn unknown_placeholders_and_path_ids_are_refused_when_the_file_is_read() {
    let d = RunDefaults::default();
    let (runs, _) = isoflop_design(&[1e12], 3, 4.0, 256, &d);
    let mut s = Sweep {
        name: "t".into(),
        results: "runs".into(),
        data: Some("corpus.txt".into()),
        vocab: 256,
        defaults: d,
        command: Some("train.sh {out} {bogus} awk '{ print $1 }'".into()),
        slurm: Default::default(),
        runs,
    };
    let dir = std::env::temp_dir().join(format!("isoflop-plan-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("sweep.toml");
    std::fs::write(&p, s.to_toml(2)).unwrap();
    let e = Sweep::read(&p).unwrap_err().to_string();
    assert!(
        e.contains("sweep.toml") && e.contains("{bogus}") && e.contains("{out}"),
        "{e}"
    );
    s.command = Some("train.sh {out} {id}".into());
    for (id, why) in [
        ("../../x", "path separator"),
        ("..", "above"),
        ("-rf", "'-'"),
        ("a\tb", "control"),
    ] {
        let mut bad = s.clone();
        bad.runs[0].id = id.into();
        std::fs::write(&p, bad.to_toml(2)).unwrap();
        let e = Sweep::read(&p).unwrap_err().to_string();
        assert!(e.contains(why) && e.contains("run id"), "{id:?}: {e}");
    }
    // Paths mean the same from any folder: both resolve beside the sweep file.
    assert_eq!(s.data_path(&p).unwrap(), dir.join("corpus.txt"));
    assert_eq!(s.results_dir(&p), dir.join("runs"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_branch_must_name_a_trunk_of_its_model_that_keeps_its_point() {
    let d = RunDefaults::default();
    let (runs, _) = wsd_branches(horizon_design(1e5, 4e5, 2, 2, 256, &d).0, &d);
    let s = Sweep {
        name: "w".into(),
        results: "runs".into(),
        data: None,
        vocab: 256,
        defaults: d,
        command: None,
        slurm: Default::default(),
        runs,
    };
    let b = s.runs.iter().position(|r| r.trunk.is_some()).unwrap();
    let cases: Vec<(Box<dyn Fn(&mut Sweep)>, &str)> = vec![
        (
            Box::new(move |s| s.runs[b].trunk = Some("nope".into())),
            "'nope' is not a run",
        ),
        (
            Box::new(move |s| *s.runs[b].at_tokens.as_mut().unwrap() += 1),
            "not among its trunk's keep_at_tokens",
        ),
        (
            Box::new(move |s| s.runs[b].at_tokens = None),
            "both trunk and at_tokens",
        ),
        (
            Box::new(|s| s.command = Some("t {out}".into())),
            "isoflop's own trainer",
        ),
    ];
    for (edit, want) in cases {
        let mut bad = s.clone();
        edit(&mut bad);
        let e = bad.check(Path::new("w.toml")).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains("w.toml"), "{e}");
    }
}
