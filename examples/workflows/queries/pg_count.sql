-- ${session_date} is the run's day, as in any query file
SELECT count(*) AS n, '${session_date}' AS day
FROM generate_series(1, 3)
