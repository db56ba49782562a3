use super::*;

#[test]
fn params_and_loss_targets_invert_the_flops_target() {
    let laws = LawSet::preset("epoch").unwrap();
    let by_c = &allocate(&laws, Target::Flops(5.76e23), 0.95).unwrap()[0];
    let by_n = &allocate(&laws, Target::Params(by_c.params), 0.95).unwrap()[0];
    assert!(
        (by_n.flops / 5.76e23 - 1.0).abs() < 1e-9 && (by_n.tokens / by_c.tokens - 1.0).abs() < 1e-9
    );
    let by_l = &allocate(&laws, Target::Loss(by_c.loss.unwrap()), 0.95).unwrap()[0];
    assert!((by_l.flops / 5.76e23 - 1.0).abs() < 1e-9, "{}", by_l.flops);
    // Independent: the loss at the allocation equals the law evaluated by hand.
    let l = ParametricLaw::EPOCH_2024;
    let hand = 1.8172 + 482.01 / by_c.params.powf(0.3478) + 2085.43 / by_c.tokens.powf(0.3658);
    assert!(
        (by_c.loss.unwrap() - hand).abs() < 1e-12
            && (l.loss(by_c.params, by_c.tokens) - hand).abs() < 1e-12
    );
}

#[test]
fn loss_below_e_is_refused_with_the_reason() {
    let laws = LawSet::preset("chinchilla").unwrap();
    let e = allocate(&laws, Target::Loss(1.5), 0.95)
        .unwrap_err()
        .to_string();
    assert!(e.contains("irreducible loss E = 1.69"), "{e}");
    assert!(allocate(&laws, Target::Flops(f64::NAN), 0.95).is_err());
}

#[test]
fn frontier_allocation_keeps_the_papers_choice_of_separate_fits() {
    // Hoffmann et al. Table 3 (Approach 1): 67B parameters and 1.5T tokens at 5.76e23
    // FLOPs. A frontier through those two points reports D from its own law, not C/(6N).
    let fr = Frontier {
        params_exponent: 0.5,
        params_coef: 6.7e10 / 5.76e23f64.sqrt(),
        tokens_exponent: 0.5,
        tokens_coef: 1.5e12 / 5.76e23f64.sqrt(),
    };
    let laws = LawSet {
        format: crate::allocate::LawFormat::default(),
        approach1: Some(Sampled {
            estimate: fr,
            samples: vec![],
        }),
        ..Default::default()
    };
    let a = &allocate(&laws, Target::Flops(5.76e23), 0.95).unwrap()[0];
    assert!((a.params / 6.7e10 - 1.0).abs() < 1e-9 && (a.tokens / 1.5e12 - 1.0).abs() < 1e-9);
    assert!((a.tokens_6nd / (5.76e23 / (6.0 * 6.7e10)) - 1.0).abs() < 1e-12);
    assert!(a.loss.is_none());
}

#[test]
fn misallocation_is_zero_at_the_optimum_and_matches_a_brute_force_search() {
    let law = ParametricLaw::EPOCH_2024;
    let c = 5.76e23;
    let n_opt = law.optimal_params(c);
    let m = misallocation(&law, c, n_opt).unwrap();
    assert!(
        m.extra_loss.abs() < 1e-12 && m.flops_lost.abs() < 1e-9 * c,
        "{m:?}"
    );
    for n in [0.5 * n_opt, 2.0 * n_opt] {
        let m = misallocation(&law, c, n).unwrap();
        // The loss on the budget line, evaluated directly.
        assert!((m.loss - law.loss(n, c / (6.0 * n))).abs() < 1e-12);
        assert!(m.extra_loss > 0.0 && m.flops_lost > 0.0);
        // The smallest budget whose compute-optimal loss is as low, by a scan of
        // 200,000 budgets over two decades below c.
        let brute = (0..=200_000)
            .map(|k| c * 10f64.powf(-2.0 + 2.0 * k as f64 / 200_000.0))
            .find(|&b| law.loss(law.optimal_params(b), law.optimal_tokens(b)) <= m.loss)
            .unwrap();
        assert!(
            (m.optimal_flops / brute - 1.0).abs() < 1e-4,
            "{} vs {brute}",
            m.optimal_flops
        );
    }
}

#[test]
fn a_prediction_interval_holds_the_scatter_beside_the_parameters() {
    let mut laws = LawSet::preset("epoch").unwrap();
    let law = laws.approach3.as_ref().unwrap().estimate;
    laws.approach3.as_mut().unwrap().samples = (0..200)
        .map(|k| ParametricLaw {
            e: law.e * (1.0 + 0.002 * ((k as f64) * 0.7).sin()),
            ..law
        })
        .collect();
    laws.residuals = (0..100).map(|k| 0.01 * ((k as f64) * 1.3).sin()).collect();
    let a = &allocate(&laws, Target::Flops(1e24), 0.95).unwrap()[0];
    let p = a.loss_prediction.as_ref().unwrap();
    let q = a.intervals.as_ref().unwrap().loss.as_ref().unwrap();
    assert!(
        p.lo < q.lo && q.hi < p.hi,
        "prediction {p:?} vs parameters {q:?}"
    );
    assert!(p.lo < a.loss.unwrap() && a.loss.unwrap() < p.hi);
    assert_eq!(a.misallocation.len(), 2);
}

#[test]
fn degenerate_laws_are_named() {
    use crate::parametric::degeneracy;
    assert!(degeneracy(&ParametricLaw::EPOCH_2024, 2.0).is_empty());
    let flat = ParametricLaw {
        e: 1e-6,
        ..ParametricLaw::EPOCH_2024
    };
    assert!(degeneracy(&flat, 2.0)[0].contains("E collapsed"));
    let steep = ParametricLaw {
        alpha: 3.2,
        a: 1e20,
        ..ParametricLaw::EPOCH_2024
    };
    let d = degeneracy(&steep, 2.0);
    assert!(
        d.iter().any(|x| x.contains("alpha")) && d.iter().any(|x| x.contains("ran off")),
        "{d:?}"
    );
}

#[test]
fn the_epoch_preset_carries_its_published_intervals() {
    let laws = LawSet::preset("epoch").unwrap();
    let law = laws.approach3.as_ref().unwrap().estimate;
    let (ivs, source) = laws.published.as_ref().unwrap();
    assert!(source.contains("Besiroglu"));
    let value = |k: &str| match k {
        "E" => law.e,
        "A" => law.a,
        "B" => law.b,
        "alpha" => law.alpha,
        _ => law.beta,
    };
    assert_eq!(ivs.len(), 5);
    for (k, i) in ivs {
        assert!(
            i.lo < value(k) && value(k) < i.hi,
            "{k}: {} outside {i:?}",
            value(k)
        );
    }
    assert!(LawSet::preset("chinchilla").unwrap().published.is_none());
}
