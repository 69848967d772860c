-- id_forget.lua: remove entries of a Redis Cluster's id directory (jobsvc/engine/directory.py) whose jobs were
-- deleted, each only while it still holds the value of the job's incarnation ('<queue>', or '<queue>|<js_inc>' for
-- an id given): the id may since have been enqueued again, into that queue or another, whose entry stays. With a
-- replacement, the entry is put back to it instead (an enqueue that claimed an entry and wrote no job with it).
-- KEYS: [1] one directory hash (given whole: its slot is its own)
-- ARGV: id1, value1, replacement1 ('' = remove), id2 ...
-- Returns: how many entries were removed or put back
local done = 0
for i = 1, #ARGV, 3 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    if ARGV[i + 2] == '' then
      done = done + redis.call('HDEL', KEYS[1], ARGV[i])
    else
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
      done = done + 1
    end
  end
end
return done
