# The shard reader library, for any tool that reads shards. The top Makefile
# includes */*.mk in alphabetical order of path, so a component that sorts
# before shards/ (harness/, leaderboard/, models/) must include this file
# itself before using the variables with := (including it twice is harmless):
#   include shards/reader.mk
#   mytool_SRCS := mytool/main.c $(SHARD_READER_SRCS)
#   mytool_LIBS := $(SHARD_READER_LIBS)
# It includes pg19_official.c: PG-19's file list (shards/pg19_files.tsv,
# compiled in) and the decision whether the books of a split are PG-19's own.
SHARD_READER_SRCS := shards/shard_reader.c shards/map_guard.c shards/pg19_official.c
SHARD_READER_LIBS := -lxxhash
SHARD_WRITER_SRCS := shards/shard_writer.c
# .incbin: the object embeds the list, so it is rebuilt when the list changes.
$(BUILD)/obj/shards/pg19_official.o: shards/pg19_files.tsv
