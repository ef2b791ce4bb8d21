# tokenize/: the SentencePiece shim (the one C++ file), words and units, the
# lossless encoder, word-type frequencies, and the `tokenize` tool.
TOKENIZE_LIB_SRCS := tokenize/spm_shim.cc tokenize/words.c tokenize/strtab.c \
                     tokenize/encoder.c tokenize/corpus.c tokenize/wordfreq.c
TOKENIZE_LIB_LIBS := -lsentencepiece -lsentencepiece_train -licuuc -lxxhash

TOOLS += tokenize
tokenize_SRCS := tokenize/main.c $(TOKENIZE_LIB_SRCS)
tokenize_LIBS := $(TOKENIZE_LIB_LIBS) -fopenmp -lm
$(BUILD)/obj/tokenize/main.o: CFLAGS += -fopenmp
