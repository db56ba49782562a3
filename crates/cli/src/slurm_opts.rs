//! `isoflop sweep --executor slurm`'s options for what each task asks for, over the sweep
//! file's `[slurm]` table (`isoflop_sweep::resources`).

use clap::Args;

/// `isoflop sweep --executor slurm`'s resources (the sweep file's `[slurm]` table's fields).
#[derive(Args, Debug, Default)]
pub struct SlurmOpts {
    /// Slurm: partition.
    #[arg(long, help_heading = "Slurm")]
    partition: Option<String>,
    /// Slurm: account.
    #[arg(long, help_heading = "Slurm")]
    account: Option<String>,
    /// Slurm: QOS.
    #[arg(long, help_heading = "Slurm")]
    qos: Option<String>,
    /// Slurm: GPUs per task.
    #[arg(long, help_heading = "Slurm")]
    gpus_per_task: Option<u32>,
    /// Slurm: a gres string instead (gpu:a100:4).
    #[arg(long, help_heading = "Slurm")]
    gres: Option<String>,
    /// Slurm: nodes per task.
    #[arg(long, help_heading = "Slurm")]
    nodes: Option<u32>,
    /// Slurm: tasks per node.
    #[arg(long, help_heading = "Slurm")]
    ntasks_per_node: Option<u32>,
    /// Slurm: CPUs per task (default: --threads).
    #[arg(long, help_heading = "Slurm")]
    cpus_per_task: Option<u32>,
    /// Slurm: memory (16G).
    #[arg(long, help_heading = "Slurm")]
    mem: Option<String>,
    /// Slurm: time limit per run (HH:MM:SS, D-HH:MM:SS), or `auto`: each run's estimate
    /// times --time-factor, rounded up; runs of one limit share an array.
    #[arg(long, help_heading = "Slurm")]
    time: Option<String>,
    /// Slurm: the safety factor of --time auto (default 3).
    #[arg(long, help_heading = "Slurm")]
    time_factor: Option<f64>,
    /// Slurm: the training speed --time auto assumes, FLOPs per second per run (for GPUs).
    #[arg(long, help_heading = "Slurm")]
    flops_per_sec: Option<f64>,
    /// Slurm: requeue a task preempted or stopped by --signal; the run resumes.
    #[arg(long, help_heading = "Slurm")]
    requeue: bool,
    /// Slurm: a signal before the time limit (B:USR1@120): the trainer checkpoints and the
    /// run is transient.
    #[arg(long, help_heading = "Slurm")]
    signal: Option<String>,
    /// Slurm: a further sbatch argument (repeatable): --sbatch-arg=--constraint=a100.
    #[arg(long, help_heading = "Slurm", allow_hyphen_values = true)]
    sbatch_arg: Vec<String>,
}

impl SlurmOpts {
    /// The sweep file's table with these options over it.
    pub fn over(
        &self,
        t: &isoflop_sweep::resources::SlurmResources,
    ) -> isoflop_sweep::resources::SlurmResources {
        let mut r = t.clone();
        macro_rules! take {
            ($($f:ident),*) => { $( if self.$f.is_some() { r.$f = self.$f.clone(); } )* };
        }
        take!(
            partition,
            account,
            qos,
            gpus_per_task,
            gres,
            nodes,
            ntasks_per_node,
            cpus_per_task,
            mem,
            time,
            time_factor,
            flops_per_sec,
            signal
        );
        r.requeue |= self.requeue;
        r.extra.extend(self.sbatch_arg.iter().cloned());
        r
    }
}
