-- Beyond the paper (issue 15): throughput (generated tokens/s) against the
-- expert memory budget M (MB, 10^6 bytes), one series per serving system,
-- each with the cache policy of its row; its label gives the mean bits per
-- expert use (avg_bits) over the budgets (a range when it moves with M), so
-- a system serving at lower precision is not read as simply faster.  Out-of-memory runs: no
-- throughput, marker 1 in column 4.  edgemoe's buffer fills the device
-- (it ignores M).  Bound by figures.ini: :model, :device; by d2moe plot:
-- :sweep, :variant.
WITH r AS (SELECT id FROM sweep_runs WHERE sweep = :sweep AND variant = :variant)
SELECT pol.value || CASE WHEN pol.value = 'edgemoe' THEN ' (fills the device, ignores M)' ELSE '' END
       || CASE WHEN max(runs.status = 'ok') OVER (PARTITION BY pol.value) THEN
            ' [' || CASE WHEN printf('%.1f', min(bits.value) OVER (PARTITION BY pol.value)) = printf('%.1f', max(bits.value) OVER (PARTITION BY pol.value))
                         THEN printf('%.1f', min(bits.value) OVER (PARTITION BY pol.value))
                         ELSE printf('%.1f-%.1f', min(bits.value) OVER (PARTITION BY pol.value), max(bits.value) OVER (PARTITION BY pol.value)) END
            || ' bits]'
          ELSE ': out of memory at every M' END AS method,
       CAST(bud.value AS REAL) / 1e6 AS budget_mb,
       CASE WHEN runs.status = 'ok' THEN tps.value END AS throughput_tps,
       CASE WHEN runs.status = 'oom' THEN 1 END AS oom
FROM r JOIN runs ON runs.id = r.id
JOIN params mo ON mo.run_id = r.id AND mo.key = 'model.name' AND mo.value = :model
JOIN params de ON de.run_id = r.id AND de.key = 'device.name' AND de.value = :device
JOIN params pol ON pol.run_id = r.id AND pol.key = 'sim.policy'
JOIN params bud ON bud.run_id = r.id AND bud.key = 'sim.budget'
LEFT JOIN metrics tps ON tps.run_id = r.id AND tps.name = 'throughput_tps'
LEFT JOIN metrics bits ON bits.run_id = r.id AND bits.name = 'avg_bits' AND runs.status = 'ok'
WHERE runs.status IN ('ok', 'oom')
ORDER BY 1, 2;
