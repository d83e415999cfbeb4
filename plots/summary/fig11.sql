-- Fig. 11 headline (dense LLaMA2-13B, M = 1600 MB, Env 1): D2MoE-V1 over INT4 on demand, throughput and peak memory
WITH r AS (SELECT id FROM sweep_runs WHERE sweep = 'fig11' AND variant = :variant),
v AS (SELECT r.id, runs.status,
        (SELECT value FROM params WHERE run_id = r.id AND key = 'sim.policy') AS policy,
        CAST((SELECT value FROM params WHERE run_id = r.id AND key = 'sim.requests') AS INTEGER) AS req,
        (SELECT value FROM metrics WHERE run_id = r.id AND name = 'throughput_tps') AS tps,
        (SELECT value FROM metrics WHERE run_id = r.id AND name = 'peak_mem_mb') AS mem
      FROM r JOIN runs ON runs.id = r.id)
SELECT d.req AS R, round(d.tps, 2) AS "v1_tok/s", round(b.tps, 2) AS "int4_tok/s", printf('%.2fx', d.tps / b.tps) AS speedup,
       round(d.mem) AS v1_peak_MB, round(b.mem) AS int4_peak_MB, printf('%.1f%%', 100.0 * (1 - d.mem / b.mem)) AS mem_saved
FROM v d JOIN v b ON b.req = d.req AND b.policy = 'moqe-dynaio-int4'
WHERE d.policy = 'd2moe-v1' AND d.status = 'ok' AND b.status = 'ok' ORDER BY d.req;
