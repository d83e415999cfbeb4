-- Fig. 10 headline: D2MoE-V1 throughput over each baseline (ratio; oom = the baseline ran out of memory)
WITH r AS (SELECT id FROM sweep_runs WHERE sweep = 'fig10' AND variant = :variant),
v AS (SELECT r.id, runs.status,
        (SELECT value FROM params WHERE run_id = r.id AND key = 'model.name') AS model,
        (SELECT value FROM params WHERE run_id = r.id AND key = 'device.name') AS device,
        (SELECT value FROM params WHERE run_id = r.id AND key = 'sim.policy') AS policy,
        CAST((SELECT value FROM params WHERE run_id = r.id AND key = 'sim.budget') AS REAL) / 1e6 AS budget_mb,
        (SELECT value FROM metrics WHERE run_id = r.id AND name = 'throughput_tps') AS tps
      FROM r JOIN runs ON runs.id = r.id),
d AS (SELECT * FROM v WHERE policy = 'd2moe-v1' AND status = 'ok')
SELECT d.model, d.device, d.budget_mb AS "M_MB", round(d.tps, 2) AS "v1_tok/s",
  (SELECT CASE WHEN b.status = 'oom' THEN 'oom' ELSE printf('%.2fx', d.tps / b.tps) END FROM v b WHERE b.model = d.model AND b.device = d.device AND b.budget_mb = d.budget_mb AND b.policy = 'moqe-dynaio-int4') AS "/moqe-int4",
  (SELECT CASE WHEN b.status = 'oom' THEN 'oom' ELSE printf('%.2fx', d.tps / b.tps) END FROM v b WHERE b.model = d.model AND b.device = d.device AND b.budget_mb = d.budget_mb AND b.policy = 'moqe-dynaio-int8') AS "/moqe-int8",
  (SELECT CASE WHEN b.status = 'oom' THEN 'oom' ELSE printf('%.2fx', d.tps / b.tps) END FROM v b WHERE b.model = d.model AND b.device = d.device AND b.budget_mb = d.budget_mb AND b.policy = 'matryoshka-free') AS "/mfree",
  (SELECT CASE WHEN b.status = 'oom' THEN 'oom' ELSE printf('%.2fx', d.tps / b.tps) END FROM v b WHERE b.model = d.model AND b.device = d.device AND b.budget_mb = d.budget_mb AND b.policy = 'edgemoe') AS "/edgemoe",
  (SELECT CASE WHEN b.status = 'oom' THEN 'oom' ELSE printf('%.2fx', d.tps / b.tps) END FROM v b WHERE b.model = d.model AND b.device = d.device AND b.budget_mb = d.budget_mb AND b.policy = 'hold-int8') AS "/hold-int8",
  (SELECT CASE WHEN b.status = 'oom' THEN 'oom' ELSE printf('%.2fx', d.tps / b.tps) END FROM v b WHERE b.model = d.model AND b.device = d.device AND b.budget_mb = d.budget_mb AND b.policy = 'hold-awq-int4') AS "/hold-awq4"
FROM d ORDER BY d.model, d.device, d.budget_mb;
