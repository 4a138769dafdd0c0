import digdag


class Steps(object):
    def __init__(self, greeting):
        self.greeting = greeting

    def count(self, rows, session_date):
        print("%s: %s rows on %s" % (self.greeting, rows, session_date))
        digdag.env.store({"batches": rows})

    def fan_out(self, batches):
        for i in range(batches):
            digdag.env.add_subtask(Steps.batch, index=i)
        digdag.env.subtask_config["_parallel"] = True

    def batch(self, index):
        print("batch %d" % index)
        digdag.env.store({"last_batch": index})


def report(prefix, batches, last_batch="none"):
    print("%s: %d batches, the last stored %s" % (prefix, batches, last_batch))
