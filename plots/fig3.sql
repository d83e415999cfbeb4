-- Fig. 3: expert I/O busy time, expert compute time and total latency
-- (makespan) in seconds against requests.  Series: what is measured.
WITH r AS (SELECT id FROM sweep_runs WHERE sweep = :sweep AND variant = :variant),
v AS (SELECT r.id,
        (SELECT CAST(value AS INTEGER) FROM params WHERE run_id = r.id AND key = 'sim.requests') AS req
      FROM r JOIN runs ON runs.id = r.id AND runs.status = 'ok')
SELECT 'expert I/O (busy time)' AS series, v.req AS requests, m.value AS time_s FROM v JOIN metrics m ON m.run_id = v.id AND m.name = 'io_busy_s'
UNION ALL
SELECT 'expert compute', v.req, m.value FROM v JOIN metrics m ON m.run_id = v.id AND m.name = 'expert_compute_s'
UNION ALL
SELECT 'total latency (makespan)', v.req, m.value FROM v JOIN metrics m ON m.run_id = v.id AND m.name = 'makespan_s'
ORDER BY 1, 2;
