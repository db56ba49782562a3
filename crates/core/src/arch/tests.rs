//! The counts against published totals and hand counts.
use super::*;

fn count(config: Value) -> ArchCount {
    Arch::from_config(&config, "config.json", None)
        .unwrap()
        .count()
}

#[test]
fn published_totals() {
    // GPT-2 small (Radford et al. 2019): 124M; Hugging Face's count is 124,439,808.
    let gpt2 = count(
        serde_json::json!({"model_type": "gpt2", "n_embd": 768, "n_layer": 12,
        "n_head": 12, "vocab_size": 50257, "n_positions": 1024}),
    );
    assert_eq!(gpt2.params.total, 124_439_808);
    // Mistral-7B (Jiang et al. 2023): 7.24B.
    let mistral = count(
        serde_json::json!({"model_type": "mistral", "hidden_size": 4096,
        "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 8, "vocab_size": 32000, "max_position_embeddings": 32768}),
    );
    assert!((mistral.params.total as f64 / 7.24e9 - 1.0).abs() < 0.005);
    // Mixtral-8x7B (Jiang et al. 2024): 46.7B in all, 12.9B active per token.
    let mixtral = count(
        serde_json::json!({"model_type": "mixtral", "hidden_size": 4096,
        "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 8, "vocab_size": 32000, "max_position_embeddings": 32768,
        "num_local_experts": 8, "num_experts_per_tok": 2}),
    );
    assert!((mixtral.params.total as f64 / 46.7e9 - 1.0).abs() < 0.005);
    assert!((mixtral.params.active as f64 / 12.9e9 - 1.0).abs() < 0.005);
    assert!((mixtral.flops_per_token.six_n / (6.0 * 12.9e9) - 1.0).abs() < 0.005);
}

#[test]
fn shared_experts_and_dense_first_layers() {
    // DeepSeekMoE 16B (Dai et al. 2024): 16.4B in all, 2.8B active per token.
    let ds = count(
        serde_json::json!({"model_type": "deepseek", "vocab_size": 102400,
        "hidden_size": 2048, "intermediate_size": 10944, "moe_intermediate_size": 1408,
        "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 16,
        "n_routed_experts": 64, "n_shared_experts": 2, "num_experts_per_tok": 6,
        "first_k_dense_replace": 1, "max_position_embeddings": 4096}),
    );
    assert!(
        (ds.params.total as f64 / 16.4e9 - 1.0).abs() < 0.005,
        "{}",
        ds.params.total
    );
    assert!(
        (ds.params.active as f64 / 2.8e9 - 1.0).abs() < 0.015,
        "{}",
        ds.params.active
    );
    // Every layer but the first: 64 experts of 3 d f, a router, 2 shared experts.
    let (d, f) = (2048usize, 1408usize);
    let moe = 64 * 3 * d * f + 64 * d + 2 * 3 * d * f;
    assert_eq!(ds.params.mlp, 3 * d * 10944 + 27 * moe);
}

#[test]
fn deepseek_m_on_a_standard_block() {
    // DeepSeek-AI 2024, eq. 2: M = 72 L d^2 + 12 L d T, on a block with f = 4d, no gate.
    let s = ModelShape::new(6, 512, 8, 32_000, 2048, true).unwrap();
    let (l, d, t) = (6.0, 512.0, 2048.0);
    let m = s.arch().count().flops_per_token.deepseek;
    assert_eq!(m, 72.0 * l * d * d + 12.0 * l * d * t);
}

#[test]
fn a_shape_counts_as_before() {
    // The benchmark model's hand count (see shape.rs) through the general count.
    let s = ModelShape::new(4, 128, 4, 256, 128, false).unwrap();
    let c = s.arch().count();
    assert_eq!(c.params.total, 875_264);
    assert_eq!(c.params.active, c.params.total);
    assert_eq!(
        c.params.non_embedding,
        4 * (12 * 128 * 128 + 13 * 128) + 2 * 128
    );
}

#[test]
fn bad_configs_name_the_field() {
    let e =
        Arch::from_config(&serde_json::json!({"model_type": "t5"}), "c.json", None).unwrap_err();
    assert!(e.to_string().contains("model_type 't5'"), "{e}");
    let e = Arch::from_config(
        &serde_json::json!({"model_type": "llama", "hidden_size": 64}),
        "c.json",
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("no `intermediate_size`"), "{e}");
    let e = Arch::from_config(
        &serde_json::json!({"model_type": "gpt2", "n_embd": -3}),
        "c.json",
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("`n_embd` is -3"), "{e}");
}
