-- Peak-memory reduction: peak accelerator memory of D2MoE-V1 and of each other method (MB), Fig. 10 runs at the largest budget
WITH r AS (SELECT id FROM sweep_runs WHERE sweep = 'fig10' AND variant = :variant),
v AS (SELECT r.id, runs.status,
        (SELECT value FROM params WHERE run_id = r.id AND key = 'model.name') AS model,
        (SELECT value FROM params WHERE run_id = r.id AND key = 'device.name') AS device,
        (SELECT value FROM params WHERE run_id = r.id AND key = 'sim.policy') AS policy,
        CAST((SELECT value FROM params WHERE run_id = r.id AND key = 'sim.budget') AS REAL) AS budget,
        (SELECT value FROM metrics WHERE run_id = r.id AND name = 'peak_mem_mb') AS mem
      FROM r JOIN runs ON runs.id = r.id),
top AS (SELECT model, device, max(budget) AS budget FROM v GROUP BY model, device),
w AS (SELECT v.* FROM v JOIN top USING (model, device, budget)),
d AS (SELECT * FROM w WHERE policy = 'd2moe-v1')
SELECT w.model, w.device, w.policy, CASE WHEN w.status = 'oom' THEN 'oom' ELSE printf('%.0f', w.mem) END AS peak_MB,
       CASE WHEN w.status = 'oom' OR d.mem IS NULL THEN '' ELSE printf('%.1f%%', 100.0 * (1 - d.mem / w.mem)) END AS "D2MoE_saves"
FROM w JOIN d ON d.model = w.model AND d.device = w.device
ORDER BY w.model, w.device, w.mem;
