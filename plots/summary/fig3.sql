-- Fig. 3 headline: expert I/O, expert compute and total latency (s) vs requests, and how much of I/O and compute overlap
WITH r AS (SELECT id FROM sweep_runs WHERE sweep = 'fig3' AND variant = :variant)
SELECT CAST(q.value AS INTEGER) AS R, round(io.value, 3) AS io_s, round(c.value, 3) AS compute_s, round(t.value, 3) AS total_s,
       printf('%.0f%%', 100.0 * (io.value + c.value - t.value) / min(io.value, c.value)) AS overlap
FROM r JOIN runs ON runs.id = r.id AND runs.status = 'ok'
JOIN params q ON q.run_id = r.id AND q.key = 'sim.requests'
JOIN metrics io ON io.run_id = r.id AND io.name = 'io_busy_s'
JOIN metrics c ON c.run_id = r.id AND c.name = 'expert_compute_s'
JOIN metrics t ON t.run_id = r.id AND t.name = 'makespan_s'
ORDER BY 1;
