# The shard reader library, for any tool that reads shards. The top Makefile
# includes */*.mk in alphabetical order of path, so a component that sorts
# before shards/ (harness/, leaderboard/, models/) must include this file
# itself before using the variables with := (including it twice is harmless):
#   include shards/reader.mk
#   mytool_SRCS := mytool/main.c $(SHARD_READER_SRCS)
#   mytool_LIBS := $(SHARD_READER_LIBS)
SHARD_READER_SRCS := shards/shard_reader.c shards/map_guard.c
SHARD_READER_LIBS := -lxxhash
SHARD_WRITER_SRCS := shards/shard_writer.c
