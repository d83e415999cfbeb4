-- Fig. 10: throughput (generated tokens/s) against the expert memory budget
-- M (MB, 10^6 bytes), one series per method.  Out-of-memory runs have no
-- throughput (NULL) and a marker value 0 in column 4 (drawn as a cross on
-- the axis).  The hold-* systems keep every expert resident and ignore M.
-- Bound by figures.ini: :model, :device; by d2moe plot: :sweep, :variant.
WITH r AS (SELECT id FROM sweep_runs WHERE sweep = :sweep AND variant = :variant)
SELECT pol.value || CASE WHEN pol.value LIKE 'hold-%' THEN ' (all resident, ignores M)' ELSE '' END
       || CASE WHEN max(runs.status = 'ok') OVER (PARTITION BY pol.value) THEN '' ELSE ': out of memory at every M' END AS method,
       CAST(bud.value AS REAL) / 1e6 AS budget_mb,
       CASE WHEN runs.status = 'ok' THEN tps.value END AS throughput_tps,
       CASE WHEN runs.status = 'oom' THEN 1 END AS oom
FROM r JOIN runs ON runs.id = r.id
JOIN params mo ON mo.run_id = r.id AND mo.key = 'model.name' AND mo.value = :model
JOIN params de ON de.run_id = r.id AND de.key = 'device.name' AND de.value = :device
JOIN params pol ON pol.run_id = r.id AND pol.key = 'sim.policy'
JOIN params bud ON bud.run_id = r.id AND bud.key = 'sim.budget'
LEFT JOIN metrics tps ON tps.run_id = r.id AND tps.name = 'throughput_tps'
WHERE runs.status IN ('ok', 'oom')
ORDER BY 1, 2;
