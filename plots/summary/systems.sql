-- Beyond the paper: every serving system at M = 2000 MB, each model and device
-- (M is the quick grid's budget): throughput, mean bits per
-- expert use (a system at lower precision is faster and less accurate), hit rate,
-- prefetch accuracy, MB loaded per generated token, and its cache policy's
-- gap to belady on the same routing (bytes loaded with its own policy over
-- those with belady, minus 1; the systems-belady sweep).
WITH r AS (SELECT id, sweep FROM sweep_runs WHERE sweep IN ('systems', 'systems-belady') AND variant = :variant),
v AS (SELECT r.sweep, runs.status,
        (SELECT value FROM params WHERE run_id = r.id AND key = 'model.name') AS model,
        (SELECT value FROM params WHERE run_id = r.id AND key = 'device.name') AS device,
        (SELECT value FROM params WHERE run_id = r.id AND key = 'sim.policy') AS policy,
        (SELECT value FROM params WHERE run_id = r.id AND key = 'system.mem') AS mem,
        CAST((SELECT value FROM params WHERE run_id = r.id AND key = 'sim.budget') AS REAL) AS budget,
        (SELECT value FROM metrics WHERE run_id = r.id AND name = 'throughput_tps') AS tps,
        (SELECT value FROM metrics WHERE run_id = r.id AND name = 'hit_rate') AS hit,
        (SELECT value FROM metrics WHERE run_id = r.id AND name = 'prefetch_loads') AS pfl,
        (SELECT value FROM metrics WHERE run_id = r.id AND name = 'prefetch_accuracy') AS pfa,
        (SELECT value FROM metrics WHERE run_id = r.id AND name = 'io_gb') AS io,
        (SELECT value FROM metrics WHERE run_id = r.id AND name = 'avg_bits') AS bits,
        (SELECT value FROM metrics WHERE run_id = r.id AND name = 'tokens_generated') AS gen
      FROM r JOIN runs ON runs.id = r.id)
SELECT o.model, o.device, o.policy AS system, o.mem AS cache,
       CASE WHEN o.status = 'oom' THEN 'oom' ELSE printf('%.3f', o.tps) END AS "tok/s",
       CASE WHEN o.status = 'oom' THEN '' ELSE printf('%.2f', o.bits) END AS bits,
       CASE WHEN o.status = 'oom' THEN '' ELSE printf('%.2f', o.hit) END AS hit_rate,
       CASE WHEN o.status = 'oom' OR o.pfl = 0 THEN '' ELSE printf('%.2f', o.pfa) END AS prefetch_acc,
       CASE WHEN o.status = 'oom' OR o.gen = 0 THEN '' ELSE printf('%.0f', 1000.0 * o.io / o.gen) END AS "MB/token",
       CASE WHEN o.status = 'oom' OR b.status IS NOT 'ok' OR b.io = 0 THEN '' ELSE printf('%+.1f%%', 100.0 * (o.io / b.io - 1)) END AS vs_belady
FROM v o LEFT JOIN v b ON b.sweep = 'systems-belady' AND b.model = o.model AND b.device = o.device AND b.policy = o.policy
                       AND b.budget = o.budget
WHERE o.sweep = 'systems' AND o.budget = 2e9
ORDER BY o.model, o.device, o.status = 'oom', o.tps DESC;
