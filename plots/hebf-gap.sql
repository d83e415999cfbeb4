-- Beyond the paper: mean relative makespan excess over the optimal order
-- per layer step (percent) against flash bandwidth (GB/s); series: planner
-- and batch size.
WITH r AS (SELECT id FROM sweep_runs WHERE sweep = :sweep AND variant = :variant),
v AS (SELECT r.id,
        (SELECT CAST(value AS INTEGER) FROM params WHERE run_id = r.id AND key = 'sim.requests') AS req,
        (SELECT CAST(value AS REAL) / 1e9 FROM params WHERE run_id = r.id AND key = 'device.flash_bw') AS bw
      FROM r JOIN runs ON runs.id = r.id AND runs.status = 'ok')
SELECT 'HEBF, R = ' || req AS series, bw AS flash_gbs, 100 * (SELECT value FROM metrics WHERE run_id = v.id AND name = 'plan_gap_mean') AS gap_pct FROM v
UNION ALL
SELECT 'id order, R = ' || req, bw, 100 * (SELECT value FROM metrics WHERE run_id = v.id AND name = 'plan_gap_idorder_mean') FROM v
ORDER BY 1, 2;
