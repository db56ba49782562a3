//! A sweep's command template, expanded for one run: every value quoted for the shell.

use super::*;

/// `value` quoted for `sh`: in single quotes, each `'` written as `'\''`. Nothing inside
/// is expanded, so a run id or a path holding `$(...)`, spaces or quotes stays one word.
pub fn sh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// Fills a command template: `{id}`, `{out}`, `{layers}`, `{d_model}`, `{heads}`, `{params}`,
/// `{tokens}`, `{steps}`, `{batch}`, `{context}`, `{lr}`, `{seed}`, `{vocab}`, `{data}`
/// ([`crate::plan::PLACEHOLDERS`]), each value quoted for `sh` ([`sh_quote`]). `{steps}` is
/// tokens / (batch * context), rounded up; `data` is the corpus, already resolved.
pub fn expand(
    template: &str,
    sweep: &Sweep,
    run: &PlannedRun,
    out: &Path,
    data: Option<&Path>,
) -> String {
    let d = &sweep.defaults;
    let steps = d.steps(run.tokens);
    let value = |name: &str| -> Option<String> {
        Some(match name {
            "id" => run.id.clone(),
            "out" => out.display().to_string(),
            "layers" => run.layers.to_string(),
            "d_model" => run.d_model.to_string(),
            "heads" => run.heads.to_string(),
            "params" => run.params.to_string(),
            "tokens" => run.tokens.to_string(),
            "steps" => steps.to_string(),
            "batch" => d.batch.to_string(),
            "context" => d.context.to_string(),
            "lr" => run.lr.unwrap_or(d.lr).to_string(),
            "seed" => run.seed.unwrap_or(d.seed).to_string(),
            "vocab" => sweep.vocab.to_string(),
            "data" => data.map(|p| p.display().to_string()).unwrap_or_default(),
            _ => return None,
        })
    };
    // One pass over the template, so a value that itself holds `{id}` is not expanded again.
    let mut s = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        s.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after
            .find('}')
            .and_then(|c| value(&after[..c]).map(|v| (c, v)))
        {
            Some((close, v)) => {
                s.push_str(&sh_quote(&v));
                rest = &after[close + 1..];
            }
            None => {
                s.push('{');
                rest = after;
            }
        }
    }
    s.push_str(rest);
    s
}
