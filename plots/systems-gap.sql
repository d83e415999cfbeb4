-- Beyond the paper (issue 15): each system's cache policy against belady on
-- the same routing: bytes loaded (demand loads and preloads) with the
-- system's own policy over those with belady, minus 1, in percent, against
-- the budget M (MB); one series per system.  The systems sweep gives the
-- first, systems-belady (the same grid, sim.mem = belady) the second.
-- Belady is optimal in loads for equal-size units (single-level systems);
-- with levels or copies of different sizes it is a heuristic in bytes and
-- the gap may be negative.  Bound by figures.ini: :model, :device.
WITH r AS (SELECT id, sweep FROM sweep_runs WHERE sweep IN (:sweep, :sweep || '-belady') AND variant = :variant),
v AS (SELECT r.sweep,
        (SELECT value FROM params WHERE run_id = r.id AND key = 'sim.policy') AS policy,
        CAST((SELECT value FROM params WHERE run_id = r.id AND key = 'sim.budget') AS REAL) / 1e6 AS budget_mb,
        (SELECT value FROM metrics WHERE run_id = r.id AND name = 'io_gb') AS io
      FROM r JOIN runs ON runs.id = r.id AND runs.status = 'ok'
      JOIN params mo ON mo.run_id = r.id AND mo.key = 'model.name' AND mo.value = :model
      JOIN params de ON de.run_id = r.id AND de.key = 'device.name' AND de.value = :device)
SELECT o.policy || CASE WHEN o.policy = 'edgemoe' THEN ' (fills the device, ignores M)' ELSE '' END AS method, o.budget_mb, 100.0 * (o.io / b.io - 1) AS gap_pct
FROM v o JOIN v b ON b.sweep = :sweep || '-belady' AND b.policy = o.policy AND b.budget_mb = o.budget_mb
WHERE o.sweep = :sweep AND b.io > 0
ORDER BY 1, 2;
